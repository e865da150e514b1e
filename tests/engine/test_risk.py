"""Risk control in the payment flow, on SQLite and PostgreSQL, in virtual time: each
verdict before any provider call, velocity cutting off a card-testing wave, history
raising a customer's limit, fraud reports feeding the lists and the score."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from paymend.domain.money import Money
from paymend.domain.payment import Customer, PaymentStatus
from paymend.engine import review, risk_ops
from paymend.engine.clock import LoopClock
from paymend.engine.commands import PayCommand, RefundCommand
from paymend.engine.payments import PaymentService
from paymend.engine.risk_gate import COUNTING, RiskGate
from paymend.engine.virtual_time import run_virtual
from paymend.providers.simulator import SimulatedProvider
from paymend.risk.features import Subjects, subjects
from paymend.risk.model import ListAction, ListKind
from paymend.risk.rules import SHIPPED_RULES, RuleSet, load
from paymend.risk.velocity import REACHES
from paymend.store import payments as repo
from paymend.store import risk as risk_repo
from paymend.store import risk_assessment as assessment
from paymend.store.database import Connection, Store
from paymend.store.engines import create_db_engine
from paymend.store.tables import payments, risk_decisions
from tests.helpers import make_merchant, service, simulator


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url, inline=True)
    yield s
    s.close()


def rules(text: str) -> RuleSet:
    return load(Path("test-rules.yaml"), text)


def with_risk(
    store: Store, clock: LoopClock, live: RuleSet, shadow: RuleSet | None = None
) -> tuple[PaymentService, SimulatedProvider]:
    sim = simulator(clock=clock)
    svc = service(store, {"sim_a": sim}, clock)
    svc.risk = RiskGate(store, clock, live, shadow)
    return svc, sim


def pay(
    mid: str,
    order: str,
    *,
    amount: int = 1999,
    device: str = "",
    card: str = "",
    customer: str | None = None,
    token: str = "sim_approve",
    **signals: str,
) -> PayCommand:
    metadata = {k: v for k, v in {"device_id": device, "card_fingerprint": card}.items() if v}
    return PayCommand(
        merchant_id=mid,  # type: ignore[arg-type]
        order_id=order,
        amount=Money(amount, "CNY"),
        method="card",
        token=token,
        customer=Customer(customer, "en", email=f"{customer}@example.com" if customer else None),
        metadata={**metadata, **signals},
    )


def test_a_card_testing_wave_is_cut_off_before_any_provider_call(store: Store) -> None:
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock = LoopClock()
        svc, sim = with_risk(store, clock, load(SHIPPED_RULES))
        outcomes = []
        for i in range(30):  # one device, a new card every time, declined as fraud
            view = await svc.pay(
                pay(
                    mid,
                    f"o{i}",
                    amount=100,
                    device="dev-x",
                    card=f"card-{i}",
                    token="sim_decline_suspected_fraud",
                )
            )
            outcomes.append(view.payment)
            await clock.sleep(5)
        blocked = [p for p in outcomes if p.failure_code == "risk_declined"]
        # three fraud-like declines on three cards reached the provider, then the device
        # was cut off: no further provider call
        assert sim.calls == 3
        assert len(blocked) == 27 and all(p.status is PaymentStatus.FAILED for p in blocked)
        decision = await risk_ops.decision(svc, blocked[0].id, mid)
        assert decision["verdict"] == "block"
        assert [f["rule"] for f in decision["fired"]] == ["device_fraud_declines"]
        assert decision["features"]["device_cards_1h"] == 3
        assert decision["features"]["device_fraud_1h"] == 3
        last = await risk_ops.decision(svc, blocked[-1].id, mid)
        assert "card_testing_device" in [f["rule"] for f in last["fired"]]
        # the fraud-like declines are business failures: the channel stays healthy
        seen = svc.health.history("sim_a", clock.now().timestamp(), 3600)
        assert seen is not None and seen.business == 3 and seen.technical == 0
        # a good customer on another device is untouched by the wave
        good = await svc.pay(pay(mid, "good", device="dev-home", card="card-home", customer="c1"))
        assert good.payment.status is PaymentStatus.SUCCEEDED
        # an hour and a minute later the device's window is clear again
        await clock.sleep(3660)
        later = await svc.pay(pay(mid, "later", device="dev-x", card="card-new"))
        assert later.payment.status is PaymentStatus.SUCCEEDED

    run_virtual(scenario())


def test_review_holds_the_payment_in_the_review_queue(store: Store) -> None:
    mid, _ = make_merchant(store)
    live = rules(
        'version: "r"\nrules:\n  - {name: big, action: review, when: amount_major > 500}\n'
    )

    async def scenario() -> None:
        clock = LoopClock()
        svc, sim = with_risk(store, clock, live)
        view = await svc.pay(pay(mid, "big", amount=90_000))
        assert view.payment.status is PaymentStatus.HELD and sim.calls == 0
        queue = store.run_sync(lambda c: repo.held(c))
        assert [p.id for p in queue] == [view.payment.id]
        released = await review.release(svc, view.payment.id, "ops:li", "called the customer")
        assert released.payment.status is PaymentStatus.SUCCEEDED and sim.calls == 1

    run_virtual(scenario())


def test_challenge_asks_for_3ds_first_and_charges_authenticated(store: Store) -> None:
    mid, _ = make_merchant(store)
    live = rules(
        'version: "c"\nrules:\n  - {name: far, action: challenge, when: country_mismatch}\n'
    )

    async def scenario() -> None:
        clock = LoopClock()
        svc, sim = with_risk(store, clock, live)
        # sim_3ds: the bank would ask for 3-D Secure unless the charge is authenticated
        view = await svc.pay(pay(mid, "far", token="sim_3ds", country="CN", ip_country="BR"))
        assert view.payment.status is PaymentStatus.REQUIRES_ACTION
        assert view.attempts == [] and sim.calls == 0
        done = await svc.confirm(mid, view.payment.id)
        assert done.payment.status is PaymentStatus.SUCCEEDED
        assert sim.calls == 1 and "risk challenge" in (done.attempts[0].reason or "")

    run_virtual(scenario())


def test_lists_are_ordered_between_challenge_and_block(store: Store) -> None:
    mid, _ = make_merchant(store)
    live = rules(
        'version: "o"\nrules:\n'
        '  - {name: dev, action: block, when: device_id == "dev-shared"}\n'
        "  - {name: far, action: challenge, when: country_mismatch}\n"
    )

    async def scenario() -> None:
        clock = LoopClock()
        svc, _ = with_risk(store, clock, live)
        assert (await svc.pay(pay(mid, "a", device="dev-shared"))).payment.failure_code == (
            "risk_declined"
        )
        await risk_ops.add_entry(svc, ListKind.CARD, "card-vip", ListAction.ALLOW, "vip", "ops:li")
        vip = await svc.pay(pay(mid, "b", device="dev-shared", card="card-vip"))
        assert vip.payment.status is PaymentStatus.SUCCEEDED  # the allow list beats block
        far = await svc.pay(
            pay(mid, "c", device="dev-shared", card="card-vip", country="CN", ip_country="US")
        )
        assert far.payment.status is PaymentStatus.REQUIRES_ACTION  # challenge comes first
        await risk_ops.add_entry(
            svc, ListKind.EMAIL, "Thief@Example.com", ListAction.BLOCK, "chargebacks", "ops:li"
        )
        thief = await svc.pay(pay(mid, "d", customer="thief"))
        assert thief.payment.failure_code == "risk_declined"
        shown = [e["shown"] for e in await risk_ops.entries(svc, ListKind.EMAIL)]
        assert shown and "thief@example.com" not in shown  # masked; the list keeps a hash

    run_virtual(scenario())


def test_shadow_rules_are_recorded_never_enforced(store: Store) -> None:
    mid, _ = make_merchant(store)
    live = rules('version: "live"\nrules: []\n')
    candidate = rules(
        'version: "next"\nshadow: true\nrules:\n  - {name: all, action: block, when: amount > 0}\n'
    )

    async def scenario() -> None:
        clock = LoopClock()
        svc, sim = with_risk(store, clock, live, candidate)
        view = await svc.pay(pay(mid, "s"))
        assert view.payment.status is PaymentStatus.SUCCEEDED and sim.calls == 1
        decision = await risk_ops.decision(svc, view.payment.id)
        assert decision["verdict"] == "allow" and decision["shadow_verdict"] == "block"
        assert decision["fired"] == [{"rule": "all", "action": "block", "shadow": True}]
        await svc.pay(pay(mid, "s2"))
        counted = await risk_ops.shadow(svc)
        assert counted == [
            {"rules_version": "live", "verdict": "allow", "shadow_verdict": "block", "n": 2}
        ]

    run_virtual(scenario())


def test_history_raises_the_limit_and_a_fraud_report_lowers_it(store: Store) -> None:
    mid, _ = make_merchant(store)
    live = rules(
        'version: "l"\nlimits: {base_major: 100}\nrules:\n'
        "  - {name: over, action: review, when: over_customer_limit}\n"
    )

    async def scenario() -> None:
        clock = LoopClock()
        svc, _ = with_risk(store, clock, live)
        first = await svc.pay(pay(mid, "big-0", amount=15_000, customer="c7"))
        assert first.payment.status is PaymentStatus.HELD  # a stranger: limit 100
        for i in range(10):
            await svc.pay(pay(mid, f"small-{i}", amount=500, customer="c7"))
            await clock.sleep(86400)
        again = await svc.pay(pay(mid, "big-1", amount=15_000, customer="c7"))
        assert again.payment.status is PaymentStatus.SUCCEEDED  # ten good days later
        d = await risk_ops.decision(svc, again.payment.id)
        assert d["score"] > 50 and d["features"]["customer_limit"] > 150
        report = await risk_ops.report(svc, again.payment.id, mid, "chargeback", "disputed")
        assert report.new
        assert not (await risk_ops.report(svc, again.payment.id, mid, "chargeback", "x")).new
        after = await svc.pay(pay(mid, "big-2", amount=15_000, customer="c7"))
        assert after.payment.status is PaymentStatus.HELD  # the chargeback cost the trust
        low = await risk_ops.decision(svc, after.payment.id)
        assert low["score"] < d["score"]

    run_virtual(scenario())


def test_a_fraud_report_blocks_the_card_device_and_email(store: Store) -> None:
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock = LoopClock()
        svc, _ = with_risk(store, clock, load(SHIPPED_RULES))
        paid = await svc.pay(pay(mid, "f1", device="dev-f", card="card-f", customer="cf"))
        assert paid.payment.status is PaymentStatus.SUCCEEDED
        done = await risk_ops.report(svc, paid.payment.id, mid, "fraud", "cardholder disputed")
        assert sorted(done.blocked) == ["card", "device", "email"]
        again = await svc.pay(pay(mid, "f2", card="card-f"))
        assert again.payment.failure_code == "risk_declined"
        d = await risk_ops.decision(svc, again.payment.id)
        assert d["fired"][0]["rule"] == "list:block:card"
        assert store.run_sync(lambda c: risk_repo.reported(c, [paid.payment.id])) == {
            paid.payment.id
        }

    run_virtual(scenario())


def test_account_takeover_from_a_new_device_is_challenged(store: Store) -> None:
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock = LoopClock()
        svc, sim = with_risk(store, clock, load(SHIPPED_RULES))
        for i in range(5):
            paid = await svc.pay(pay(mid, f"h{i}", amount=20_000, device="phone-1", customer="c3"))
            assert paid.payment.status is PaymentStatus.SUCCEEDED
            await clock.sleep(86400)
        home = await svc.pay(pay(mid, "home", amount=150_000, device="phone-1", customer="c3"))
        assert home.payment.status is PaymentStatus.SUCCEEDED  # their own phone: allowed
        calls = sim.calls
        taken = await svc.pay(pay(mid, "ato", amount=150_000, device="laptop-9", customer="c3"))
        assert taken.payment.status is PaymentStatus.REQUIRES_ACTION and sim.calls == calls
        d = await risk_ops.decision(svc, taken.payment.id)
        assert d["verdict"] == "challenge" and d["features"]["device_new"] is True
        assert d["fired"][0]["rule"] == "known_customer_new_device_large"
        small = await svc.pay(pay(mid, "ato-small", amount=5_000, device="laptop-9", customer="c3"))
        assert small.payment.status is PaymentStatus.SUCCEEDED  # small amounts pass

    run_virtual(scenario())


def _every_decision() -> assessment.VelocityAsk:
    """Velocity rows of every decision of a test, all inside the narrowest window."""
    start = datetime(2000, 1, 1, tzinfo=UTC)
    return assessment.VelocityAsk((start,) * len(REACHES), "CNY", "", COUNTING)


def test_the_one_read_answers_what_its_two_statements_answer(store: Store) -> None:
    """store/risk_assessment.py `read` reads the velocity rows and the history in one
    statement: the same rows and history as asked apart, also for a customer with no
    rows at all (the history alone)."""

    def as_dicts(rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
        return [dict(zip(assessment.VELOCITY_COLUMNS, r, strict=True)) for r in rows]

    mid, _ = make_merchant(store)
    since = _every_decision()

    def asked(who: Subjects, customer_id: str) -> assessment.HistoryKeys:
        listed = [("card", who.card), ("email", who.email), ("device", who.device)]
        return assessment.HistoryKeys(mid, customer_id, who.customer, who.device, who.card, listed)

    def both(who: Subjects, customer_id: str) -> tuple[Any, Any]:
        keys = asked(who, customer_id)

        def read(conn: Connection) -> tuple[Any, Any]:
            pairs = who.items()
            rows, history = assessment.read(conn, pairs, since, keys)
            together = (as_dicts(rows), history)
            apart = (
                as_dicts(assessment.read(conn, pairs, since, None)[0]),
                assessment.read(conn, (), None, keys)[1],
            )
            return together, apart

        return store.run_sync(read)

    async def scenario() -> None:
        clock = LoopClock()
        svc, _ = with_risk(store, clock, load(SHIPPED_RULES))
        for i in range(3):
            await svc.pay(pay(mid, f"o{i}", device="dev-1", card="card-1", customer="c1"))
            await clock.sleep(60)
        await risk_ops.add_entry(svc, ListKind.CARD, "card-1", ListAction.ALLOW, "vip", "ops:li")

    run_virtual(scenario())
    seen = subjects(
        mid, "c1", "c1@example.com", {"device_id": "dev-1", "card_fingerprint": "card-1"}
    )
    (rows, history), (rows_apart, history_apart) = both(seen, "c1")
    assert sorted(rows, key=repr) == sorted(rows_apart, key=repr) and len(rows) == 3
    assert history == history_apart
    assert history["successes"] == 3 and history["list_card"] == "allow"
    new = subjects(mid, "c9", "c9@example.com", {"device_id": "dev-9"})
    (rows, history), (rows_apart, history_apart) = both(new, "c9")
    assert rows == rows_apart == [] and history == history_apart
    assert history["decided"] == 0 and history["first"] is None


def test_a_key_the_payment_lacks_counts_nothing(store: Store) -> None:
    """A payment without a card, device or customer gets zero, false and no first
    payment for what those keys would count, however many earlier payments lacked them
    too: the customer's three card-less payments are three successes of the customer,
    not of a card."""
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock = LoopClock()
        svc, _ = with_risk(store, clock, load(SHIPPED_RULES))
        for i in range(3):
            await svc.pay(pay(mid, f"o{i}", customer="c1"))
            await clock.sleep(60)

    run_virtual(scenario())
    since = _every_decision()

    def history(customer_id: str, device: str) -> dict[str, Any]:
        who = subjects(mid, customer_id, None, {"device_id": device} if device else {})
        keys = assessment.HistoryKeys(mid, customer_id, who.customer, who.device, who.card)
        found = store.run_sync(lambda conn: assessment.read(conn, who.items(), since, keys)[1])
        assert found is not None
        return found

    known = history("c1", "")
    assert (known["successes"], known["decided"], known["first"] is not None) == (3, 1, True)
    assert (known["card_successes"], known["card_chargebacks"], known["on_device"]) == (0, 0, 0)
    nobody = history("", "dev-1")
    assert (nobody["successes"], nobody["refunds"], nobody["chargebacks"]) == (0, 0, 0)
    assert (nobody["decided"], nobody["on_device"], nobody["first"]) == (0, 0, None)


@pytest.mark.postgres
def test_postgresql_plans_the_read_of_a_payment_without_a_card_once(postgres_url: str) -> None:
    """PostgreSQL plans a prepared statement anew at each run until its one plan for any
    value is as cheap (https://www.postgresql.org/docs/current/sql-prepare.html). The
    read once named the card of a payment without one, bound as NULL: its one plan
    scanned the decisions for that NULL, so each payment's read was planned afresh,
    most of its cost. Without the card in the statement, the plan is kept."""
    store = Store(postgres_url, inline=True)
    try:
        mid, _ = make_merchant(store)

        async def scenario() -> None:
            clock = LoopClock()
            svc, _ = with_risk(store, clock, load(SHIPPED_RULES))
            for i in range(30):
                await svc.pay(pay(mid, f"o{i}", customer=f"c{i % 3}"))
                await clock.sleep(60)

        run_virtual(scenario())
        with store.engine.begin() as conn:  # a shop's history, none of it with a card
            row = dict(conn.execute(sa.select(risk_decisions).limit(1)).one()._mapping)
            assert row["card"] == ""
            conn.execute(
                risk_decisions.insert(),
                [
                    {**row, "payment_id": f"pay_{i}", "customer_id": f"{mid}/{i}", "email": f"{i}"}
                    for i in range(3000)
                ],
            )
        with store.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
        who = subjects(mid, "c1", "c1@example.com", {})
        keys = assessment.HistoryKeys(mid, "c1", who.customer, who.device, who.card)
        since = _every_decision()

        fresh = create_db_engine(postgres_url)  # a connection of its own, nothing prepared
        try:
            with fresh.begin() as conn:
                for _ in range(20):
                    assessment.read(conn, who.items(), since, keys)
                generic, custom = conn.exec_driver_sql(
                    "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
                    " WHERE statement LIKE '%%AS card_successes%%'"
                ).one()
        finally:
            fresh.dispose()
    finally:
        store.close()
    assert custom <= 5 and generic >= 10, (generic, custom)


def test_history_counts_paid_refunded_and_failed_payments(store: Store) -> None:
    """The history's counts and the velocity rows' outcomes: a paid payment counts as
    a success of its customer and card, refunded ones (in full or in part) as refunds
    too, a declined one as neither, and its velocity row (its outcome read through the
    failed payments' partial index, migration 0025) says it failed, with its code."""
    mid, _ = make_merchant(store)
    ids: dict[str, str] = {}

    async def scenario() -> None:
        clock = LoopClock()
        svc, _ = with_risk(store, clock, load(SHIPPED_RULES))
        for order, token in [
            ("a", "sim_approve"),
            ("b", "sim_approve"),
            ("c", "sim_approve"),
            ("d", "sim_decline_insufficient_funds"),
        ]:
            paid = await svc.pay(
                pay(mid, order, amount=5_000, card="card-5", customer="c5", token=token)
            )
            ids[order] = paid.payment.id
            await clock.sleep(60)
        await svc.refund(RefundCommand(mid, ids["a"]))
        await svc.refund(RefundCommand(mid, ids["b"], 1_000))

    run_virtual(scenario())
    who = subjects(mid, "c5", "c5@example.com", {"card_fingerprint": "card-5"})
    keys = assessment.HistoryKeys(mid, "c5", who.customer, "", who.card)
    since = _every_decision()
    rows, history = store.run_sync(lambda conn: assessment.read(conn, who.items(), since, keys))
    assert history is not None
    assert (history["successes"], history["refunds"], history["card_successes"]) == (3, 2, 3)
    named = [dict(zip(assessment.VELOCITY_COLUMNS, r, strict=True)) for r in rows]
    # four payments of the card, the customer and the email (bits 0-2), in every
    # window; the declined one a failure (insufficient funds: not fraud-like)
    assert sorted(r["failure"] for r in named) == [0, 0, 0, 1]
    assert {(r["band"], r["amount"], r["card"], r["shared"]) for r in named} == {
        (0, 50.0, "card-5", 0b111)
    }


def test_history_counts_the_last_payments_and_the_first_of_all(store: Store) -> None:
    """A customer's and a card's successes and refunds are counted over their last
    HISTORY_DEPTH payments, however long the history (counting all of it made every
    payment of a long-standing customer slower with each one before it); their first
    payment is still the first of all. The oldest five payments here were refunded:
    beyond the depth, they count neither as successes nor as refunds."""
    mid, _ = make_merchant(store)
    depth = assessment.HISTORY_DEPTH

    async def scenario() -> None:
        clock = LoopClock()
        svc, _ = with_risk(store, clock, load(SHIPPED_RULES))
        await svc.pay(pay(mid, "now", card="card-8", customer="c8"))

    run_virtual(scenario())
    with store.engine.begin() as conn:
        paid = dict(conn.execute(sa.select(payments)).one()._mapping)
        decided = dict(conn.execute(sa.select(risk_decisions)).one()._mapping)
        for k in range(depth + 5):  # one a day before it, the oldest five refunded
            at = paid["created_at"] - timedelta(days=k + 1)
            pid = f"pay_hist{k:04d}"
            status = "refunded" if k >= depth else "succeeded"
            conn.execute(
                payments.insert(),
                {**paid, "id": pid, "order_id": f"hist-{k}", "status": status}
                | {"created_at": at, "updated_at": at},
            )
            conn.execute(risk_decisions.insert(), {**decided, "payment_id": pid, "created_at": at})
    who = subjects(mid, "c8", "c8@example.com", {"card_fingerprint": "card-8"})
    keys = assessment.HistoryKeys(mid, "c8", who.customer, "", who.card)
    history = store.run_sync(lambda conn: assessment.read(conn, (), None, keys)[1])
    assert history is not None
    assert (history["successes"], history["refunds"], history["card_successes"]) == (
        depth,
        0,
        depth,
    )
    oldest = paid["created_at"] - timedelta(days=depth + 5)
    assert history["first"] == oldest
