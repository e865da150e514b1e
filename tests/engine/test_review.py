"""Holding large payments for manual review: nothing is called until ops decide; a
release charges it now, a rejection fails it; both are audit-logged with the change."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from paymend.domain.control import Control, ControlKind, ControlScope
from paymend.domain.errors import InvalidInput
from paymend.domain.money import Money
from paymend.domain.payment import Customer, PaymentStatus
from paymend.engine import review
from paymend.engine.clock import LoopClock
from paymend.engine.commands import PayCommand
from paymend.engine.controls import route_controls
from paymend.engine.virtual_time import run_virtual
from paymend.store import payments as repo
from paymend.store.database import Store
from paymend.store.tables import audit_log, events
from tests.helpers import NOW, make_merchant, service, simulator


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url, inline=True)
    yield s
    s.close()


def cmd(mid: str, amount: int, order: str, bank: str = "CMB") -> PayCommand:
    return PayCommand(
        merchant_id=mid,  # type: ignore[arg-type]
        order_id=order,
        amount=Money(amount, "CNY"),
        method="card",
        bank=bank,
        region="CN-East",
        customer=Customer("c1", "zh-CN"),
    )


def test_large_payments_of_a_held_bank_wait_and_ops_decide(store: Store) -> None:
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock = LoopClock()
        a = simulator(clock=clock)
        svc = service(store, {"sim_a": a}, clock)
        await svc.controls.set(
            "hold", "bank", "CMB", "card", "CMB errors", "playbook:x", ["sim_a"], 50_000, "CNY"
        )
        small = await svc.pay(cmd(mid, 50_000, "o-small"))
        other = await svc.pay(cmd(mid, 900_000, "o-icbc", bank="ICBC"))
        large = await svc.pay(cmd(mid, 50_001, "o-large"))
        again = await svc.pay(cmd(mid, 700_000, "o-large-2"))
        assert small.payment.status is PaymentStatus.SUCCEEDED
        assert other.payment.status is PaymentStatus.SUCCEEDED
        assert large.payment.status is PaymentStatus.HELD and large.attempts == []
        assert a.calls == 2  # nobody was called for the held ones
        queue = store.run_sync(lambda c: repo.held(c))
        assert [p.id for p in queue] == [large.payment.id, again.payment.id]

        released = await review.release(svc, large.payment.id, "ops:li", "customer verified")
        assert released.payment.status is PaymentStatus.SUCCEEDED
        assert released.attempts[0].reason.startswith("released by ops:li")  # type: ignore[union-attr]
        rejected = await review.reject(svc, again.payment.id, "ops:li", "no answer from customer")
        assert rejected.payment.status is PaymentStatus.FAILED
        assert rejected.payment.failure_code == "generic_decline"  # never "under review"
        assert a.calls == 3
        with pytest.raises(InvalidInput) as refused:
            await review.release(svc, again.payment.id, "ops:li", "oops")
        assert refused.value.code == "payment_not_held"

    run_virtual(scenario())
    with store.engine.connect() as conn:
        audit = [r.action for r in conn.execute(sa.select(audit_log).order_by(audit_log.c.id))]
        types = [r.type for r in conn.execute(sa.select(events).order_by(events.c.seq))]
    assert audit == ["control.hold", "payment.release", "payment.reject"]
    assert types.count("payment.held") == 2


def test_a_hold_needs_an_amount_and_only_a_hold_takes_one(store: Store) -> None:
    async def scenario() -> None:
        clock = LoopClock()
        svc = service(store, {"sim_a": simulator(clock=clock)}, clock)
        with pytest.raises(InvalidInput, match="amount_above"):
            await svc.controls.set("hold", "bank", "CMB", None, "r", "ops", ["sim_a"])
        with pytest.raises(InvalidInput, match="amount_above"):
            await svc.controls.set("pause", "bank", "CMB", None, "r", "ops", ["sim_a"], 10)
        with pytest.raises(InvalidInput, match="'hold' applies to bank, region"):
            await svc.controls.set("hold", "channel", "sim_a", None, "r", "ops", ["sim_a"], 10)
        with pytest.raises(InvalidInput, match="currency") as no_currency:
            await svc.controls.set("hold", "bank", "CMB", None, "r", "ops", ["sim_a"], 10)
        assert no_currency.value.param == "currency"
        assert await svc.controls.active() == []

    run_virtual(scenario())


def test_a_hold_is_per_currency_and_one_from_before_currencies_holds_every_one() -> None:
    def hold(currency: str | None) -> Control:
        return Control(
            "ctl_1",
            ControlKind.HOLD,
            ControlScope.BANK,
            "CMB",
            None,
            "r",
            "ops",
            NOW,
            None,
            None,
            500_000,
            currency,
        )

    def held(c: Control, minor: int, currency: str) -> bool:
        return (
            route_controls([c], "card", "CMB", None, Money(minor, currency)).held_because
            is not None
        )

    cny = hold("CNY")
    assert held(cny, 500_001, "CNY") and not held(cny, 500_000, "CNY")
    assert not held(cny, 500_001, "KRW") and not held(cny, 500_001, "KWD")
    assert route_controls([cny], "card", "CMB", None).held_because is None  # a release
    legacy = hold(None)  # set before migration 0009: it holds as it did
    assert all(held(legacy, 500_001, c) for c in ("CNY", "KRW", "KWD"))
