"""Playbooks carried out: a channel goes down, an incident opens with its diagnosis and
timeline, every automatic action is audit-logged, and it all recovers by itself."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY

from paymend.domain.ids import MerchantId
from paymend.domain.money import Money
from paymend.domain.payment import Customer
from paymend.engine.clock import LoopClock
from paymend.engine.commands import PayCommand
from paymend.engine.payments import PaymentService
from paymend.engine.playbooks import LEAD_S, PlaybookRunner, quiet_spans
from paymend.engine.virtual_time import run_virtual
from paymend.engine.worker import Worker
from paymend.health.keys import scoped_key
from paymend.health.outcomes import Outcome
from paymend.playbooks.model import DEFAULT_PATH, load_playbooks
from paymend.providers.simulator import SimulatedProvider
from paymend.store import incidents
from paymend.store.database import Store
from paymend.store.tables import attempts, audit_log
from tests.helpers import make_merchant, service, simulator

BANKS = ("ICBC", "CCB", "CMB", "BOC")
REGIONS = ("CN-East", "CN-North", "CN-South")


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url, inline=True)
    yield s
    s.close()


def command(mid: MerchantId, i: int, bank: str | None = None) -> PayCommand:
    return PayCommand(
        merchant_id=mid,
        order_id=f"o-{i}",
        amount=Money(1000 + i, "CNY"),
        method="card",
        bank=bank or BANKS[i % len(BANKS)],
        region=REGIONS[i % len(REGIONS)],
        customer=Customer(f"c{i}", "zh-CN"),
    )


async def pay_many(
    svc: PaymentService, clock: LoopClock, mid: MerchantId, n: int, at: int
) -> list[str]:
    providers = []
    for i in range(at, at + n):
        view = await svc.pay(command(mid, i))
        assert view.payment.status.value == "succeeded"
        providers.append(view.attempts[-1].provider)
        await clock.sleep(0.1)
    return providers


def two_channels(
    store: Store,
) -> tuple[LoopClock, SimulatedProvider, SimulatedProvider, PaymentService, PlaybookRunner]:
    """sim_a first, sim_b behind it, the shipped playbooks (call inside the loop)."""
    clock = LoopClock()
    a, b = simulator(clock=clock), simulator("sim_b", clock=clock)
    svc = service(store, {"sim_a": a, "sim_b": b}, clock, routing=("sim_a", "sim_b"))
    return clock, a, b, svc, PlaybookRunner(svc, load_playbooks(DEFAULT_PATH))


def test_a_channel_outage_opens_an_incident_and_recovers_by_itself(store: Store) -> None:
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock, a, _, svc, runner = two_channels(store)
        served = await pay_many(svc, clock, mid, 600, 0)
        assert served.count("sim_a") > 550  # the rest: exploration keeps sim_b known
        await runner.tick()
        assert store.run_sync(lambda c: incidents.search(c, None, None, 10)) == []

        a.settings = dataclasses.replace(a.settings, outage=True)
        alerts = ("paymend_ops_alerts_total", {"playbook": "channel-down", "severity": "critical"})
        before = REGISTRY.get_sample_value(*alerts) or 0.0
        served = await pay_many(svc, clock, mid, 100, 600)  # every customer still pays
        assert served[-50:] == ["sim_b"] * 50  # the circuit opened on sim_a
        await runner.tick()
        (opened,) = store.run_sync(lambda c: incidents.search(c, None, "open", 10))
        assert (opened.playbook, opened.scope, opened.severity) == (
            "channel-down",
            {"channel": "sim_a"},
            "critical",
        )
        assert opened.diagnosis[0]["scope"] == {"channel": "sim_a"}
        assert opened.affected_payments >= 5
        assert REGISTRY.get_sample_value(*alerts) == before + 1  # what pages ops

        a.settings = dataclasses.replace(a.settings, outage=False)
        for n in range(20):  # up to a few minutes: probes pass, the circuit closes, all clear
            await pay_many(svc, clock, mid, 100, 700 + n * 100)
            await runner.tick()
            if store.run_sync(lambda c: incidents.get(c, opened.id)).status == "resolved":
                break
        whole = store.run_sync(lambda c: incidents.get(c, opened.id))
        assert whole.status == "resolved"
        kinds = [e.kind for e in whole.events or []]
        assert kinds[0] == "signal" and "action" in kinds and kinds[-1] == "resolved"
        assert "recovery" in kinds

    run_virtual(scenario())
    with store.engine.connect() as conn:
        entries = [
            (r.actor, r.action, r.target)
            for r in conn.execute(sa.select(audit_log).order_by(audit_log.c.id))
        ]
    assert [e for e in entries if e[0] != "breaker"] == [
        ("playbook:channel-down", "playbook.start", "sim_a"),
        ("playbook:channel-down", "playbook.recover", "sim_a"),
    ]
    breaker = [e[1] for e in entries if e[0] == "breaker" and e[2] == "sim_a"]
    assert breaker[0] == "breaker.open" and breaker[-1] == "breaker.closed"  # audited too
    start = entries.index(("playbook:channel-down", "playbook.start", "sim_a"))
    assert entries.index(("breaker", "breaker.open", "sim_a")) < start


def test_a_bank_down_everywhere_is_paused_for_customers_and_resumed(store: Store) -> None:
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock, a, b, svc, runner = two_channels(store)
        await pay_many(svc, clock, mid, 400, 0)
        bank = "CMB"

        key = scoped_key("*", "bank", bank)
        for _ in range(2):  # CMB fails on every channel, for longer than the trigger's 5 s
            now = svc._health_now()
            for i in range(60):
                svc.health.record([key], now + i * 0.1, Outcome.TECHNICAL)
            await clock.sleep(6)
            await runner.tick()
        controls = await svc.controls.active()
        assert [(c.kind, c.scope, c.value, c.set_by) for c in controls] == [
            ("pause", "bank", bank, "playbook:bank-down")
        ]
        probe = await svc.pay(command(mid, 9998, bank=bank))  # one a second may pass
        assert probe.payment.status.value == "succeeded"
        assert "a probe through the pause" in (probe.attempts[0].reason or "")
        view = await svc.pay(command(mid, 9999, bank=bank))  # waits out the pause
        assert view.payment.status.value == "processing" and view.attempts == []
        assert a.calls + b.calls == 401  # nobody was called for it
        await clock.sleep(1)
        again = await svc.pay(command(mid, 10000, bank=bank))
        assert again.payment.status.value == "succeeded"  # the next second's probe
        worker = Worker(svc)
        for _ in range(30):
            await clock.sleep(10)
            await runner.tick()
            await worker.drain()
        assert await svc.controls.active() == []
        waited = await svc.get(view.payment.id)  # let through within its deadline
        assert waited.payment.status.value == "succeeded" and len(waited.attempts) == 1

    run_virtual(scenario())
    with store.engine.connect() as conn:
        actions = [r.action for r in conn.execute(sa.select(audit_log).order_by(audit_log.c.id))]
    assert [a for a in actions if not a.startswith("breaker.")] == [
        "control.pause",
        "playbook.start",
        "control.pause.end",
        "playbook.recover",
    ]


HOLD_PLAYBOOK = (
    "playbooks:\n"
    "  - name: bank-hold\n"
    "    description: Large payments of a failing bank wait for review\n"
    "    severity: major\n"
    "    when: {signal: error_spike, scope: bank, threshold: 0.5, min_calls: 20}\n"
    "    do: [{hold: {what: bank, above: {CNY: 5000, JPY: 500}, method: card}}]\n"
    "    recover: {after: 60s}\n"
)


def cmb_fails(svc: PaymentService) -> None:
    now = svc._health_now()
    for i in range(40):
        svc.health.record([scoped_key("*", "bank", "CMB")], now + i * 0.1, Outcome.TECHNICAL)


def in_currency(c: PayCommand, minor: int, currency: str) -> PayCommand:
    return dataclasses.replace(c, amount=Money(minor, currency))


def test_a_hold_playbook_holds_large_payments_per_currency_and_lifts_the_hold(
    store: Store, tmp_path: Path
) -> None:
    mid, _ = make_merchant(store)
    path = tmp_path / "playbooks.yaml"
    path.write_text(HOLD_PLAYBOOK)

    async def scenario() -> None:
        clock, _, _, svc, _ = two_channels(store)
        runner = PlaybookRunner(svc, load_playbooks(path))
        await pay_many(svc, clock, mid, 200, 0)
        cmb_fails(svc)
        await clock.sleep(5)
        await runner.tick()
        holds = await svc.controls.active()
        assert [(h.kind, h.value, h.currency, h.amount_above, h.method) for h in holds] == [
            ("hold", "CMB", "CNY", 5000, "card"),
            ("hold", "CMB", "JPY", 500, "card"),
        ]
        assert {h.set_by for h in holds} == {"playbook:bank-hold"}
        cny = command(mid, 9000, bank="CMB")  # 10,000 fen: ¥100
        statuses = [
            (await svc.pay(c)).payment.status.value
            for c in (
                cny,
                command(mid, 3000, bank="CMB"),  # ¥40: under CNY 5000
                in_currency(command(mid, 9001, bank="CMB"), 600, "JPY"),  # ¥600: above 500
                in_currency(command(mid, 9002, bank="CMB"), 400, "JPY"),
                in_currency(command(mid, 9003, bank="CMB"), 10_000, "KRW"),  # not listed
            )
        ]
        assert statuses == ["held", "succeeded", "held", "succeeded", "succeeded"]
        for _ in range(20):
            await clock.sleep(10)
            await runner.tick()
        assert await svc.controls.active() == []

    run_virtual(scenario())


def test_a_playbook_leaves_an_operators_identical_control_alone(
    store: Store, tmp_path: Path
) -> None:
    mid, _ = make_merchant(store)
    path = tmp_path / "playbooks.yaml"
    path.write_text(HOLD_PLAYBOOK.replace("do: [{hold", "do: [open_incident, {hold"))

    async def scenario() -> None:
        clock, _, _, svc, _ = two_channels(store)
        runner = PlaybookRunner(svc, load_playbooks(path))
        mine = await svc.controls.set(
            "hold", "bank", "CMB", "card", "watching CMB", "operator:lin", ["sim_a"], 5000, "CNY"
        )
        await pay_many(svc, clock, mid, 200, 0)
        cmb_fails(svc)
        await clock.sleep(5)
        await runner.tick()  # the CNY hold is the operator's: only the JPY one is new
        holds = await svc.controls.active()
        assert [(h.currency, h.set_by) for h in holds] == [
            ("CNY", "operator:lin"),
            ("JPY", "playbook:bank-hold"),
        ]
        for _ in range(20):
            await clock.sleep(10)
            await runner.tick()
        assert [h.id for h in await svc.controls.active()] == [mine.id]  # still the operator's
        (incident,) = store.run_sync(lambda c: incidents.search(c, None, None, 10))
        whole = store.run_sync(lambda c: incidents.get(c, incident.id))
        actions = [e.message for e in whole.events or [] if e.kind == "action"]
        assert f"already held ({mine.id}, set by operator:lin)" in " ".join(actions)

    run_virtual(scenario())


def test_a_playbook_restarted_mid_run_takes_back_its_own_control(
    store: Store, tmp_path: Path
) -> None:
    mid, _ = make_merchant(store)
    path = tmp_path / "playbooks.yaml"
    path.write_text(HOLD_PLAYBOOK)

    async def scenario() -> None:
        clock, _, _, svc, _ = two_channels(store)
        await pay_many(svc, clock, mid, 200, 0)
        cmb_fails(svc)
        await clock.sleep(5)
        await PlaybookRunner(svc, load_playbooks(path)).tick()
        before = {h.id for h in await svc.controls.active()}
        restarted = PlaybookRunner(svc, load_playbooks(path))  # a new worker: no memory
        cmb_fails(svc)
        await restarted.tick()
        assert {h.id for h in await svc.controls.active()} == before  # none twice
        for _ in range(20):
            await clock.sleep(10)
            await restarted.tick()
        assert await svc.controls.active() == []  # and it ends them on recovery

    run_virtual(scenario())


def test_the_diagnosis_baseline_skips_time_when_incidents_were_open() -> None:
    # nothing open: the two minutes before the signal
    assert quiet_spans(1000.0, [], 120.0, 1800.0) == [(880.0, 1000.0)]
    # an incident open from 900 to 950: 50 s after it, then 70 s before it
    assert quiet_spans(1000.0, [(900.0, 950.0)], 120.0, 1800.0) == [
        (950.0, 1000.0),
        (830.0, 900.0),
    ]
    # overlapping incidents, one still open: the time before the first of them
    busy = [(700.0, 960.0), (800.0, math.inf)]
    assert quiet_spans(1000.0, busy, 120.0, 1800.0) == [(580.0, 700.0)]
    # never further back than the lookback, even when that gives less than asked
    assert quiet_spans(1000.0, [(950.0, math.inf)], 120.0, 100.0) == [(900.0, 950.0)]


def test_an_incidents_baseline_is_read_once_and_kept_while_it_is_refined(store: Store) -> None:
    """The calls before the signal are read at the incident's first diagnosis and kept
    for its refinements: that window is in the past, and reading minutes of calls again
    every REFRESH_S for each open incident was nearly half the worker's time in an
    outage. History rewritten after the first diagnosis does not reach the second."""
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock, a, _, svc, runner = two_channels(store)
        await pay_many(svc, clock, mid, 600, 0)
        a.settings = dataclasses.replace(a.settings, outage=True)
        await pay_many(svc, clock, mid, 100, 600)
        await runner.tick()  # the incident opens with its first diagnosis
        (opened,) = store.run_sync(lambda c: incidents.search(c, None, "open", 10))
        first = opened.diagnosis[0]
        before = opened.opened_at - timedelta(seconds=LEAD_S + 1)
        rewritten = store.run_sync(
            lambda c: (
                c.execute(
                    sa.update(attempts)
                    .where(attempts.c.created_at < before)
                    .values(status="failed", unified_code="provider_unavailable")
                ).rowcount
            )
        )
        assert rewritten > 100  # the baseline's calls, now every one failed
        await pay_many(svc, clock, mid, 110, 700)  # 11 s: the next refresh is due
        await runner.tick()
        diagnosis = store.run_sync(lambda c: incidents.get(c, opened.id)).diagnosis
        assert diagnosis, "the baseline was read again: every call before failed, no excess"
        again = diagnosis[0]
        assert again["scope"] == first["scope"] == {"channel": "sim_a"}
        expected, calls = again["expected"], again["calls"]
        expected_first, calls_first = first["expected"], first["calls"]
        assert expected is not None and calls and expected_first is not None and calls_first
        rate = expected / calls  # the baseline rate the diagnosis used
        assert rate == pytest.approx(expected_first / calls_first)
        assert rate < 0.5

    run_virtual(scenario())
