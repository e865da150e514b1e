"""What velocity counts as a customer's failure, alike in Redis and in the database: a
payment an operator rejects from review is one; a payment refused because ops paused
its bank is not (nor any whose bank was unavailable), and a decline is."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from paymend.domain.money import Money
from paymend.domain.payment import Customer, PaymentStatus
from paymend.engine import review
from paymend.engine.clock import LoopClock
from paymend.engine.commands import PayCommand
from paymend.engine.payments import PaymentService
from paymend.engine.risk_gate import RiskGate
from paymend.engine.virtual_time import run_virtual
from paymend.engine.worker import Worker
from paymend.failures.catalogue import load_catalogue
from paymend.risk.features import FRAUD_LIKE_CODES
from paymend.risk.redis_velocity import RedisVelocity
from paymend.risk.rules import SHIPPED_RULES, load
from paymend.risk.velocity import BLOCKED_CODE, NOT_THE_CUSTOMERS, counted_failure
from paymend.store.database import Store
from tests.engine.test_waiting import until_settled
from tests.helpers import make_merchant, service, simulator


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url, inline=True)
    yield s
    s.close()


@pytest.fixture
def book(request: pytest.FixtureRequest) -> Iterator[RedisVelocity | None]:
    """The counters the payments are made with: Redis's, or None (the database's)."""
    if request.param == "database":
        yield None
        return
    url = request.getfixturevalue("redis_url")
    prefix = f"paymend-test-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(url)
    yield RedisVelocity(client, prefix)
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)
    client.close()


def cmd(mid: str, order: str, amount: int, bank: str, token: str = "sim_approve") -> PayCommand:
    return PayCommand(
        merchant_id=mid,  # type: ignore[arg-type]
        order_id=order,
        amount=Money(amount, "CNY"),
        method="card",
        bank=bank,
        token=token,
        customer=Customer("c1", "en", email="c1@example.com"),
        metadata={"card_fingerprint": "card-1", "device_id": "dev-1"},
    )


async def velocity(svc: PaymentService, gate: RiskGate, mid: str) -> dict[str, float]:
    """The velocity features a next payment of the customer would be decided on through
    `gate`, nothing paid."""
    pending = gate.prepare(cmd(mid, "next", 100, "ABC"), "pay_next")
    decided = await svc.store.run(lambda conn: gate.decide(conn, pending))
    features: dict[str, Any] = decided.decision.features
    names = [f"{s}_{m}_1h" for s in SUBJECTS for m in METRICS]
    return {n: float(features.get(n, 0)) for n in names}


METRICS = ("count", "failed", "fraud")
SUBJECTS = ("customer", "card", "device", "email")


@pytest.mark.parametrize(
    "book", ["database", pytest.param("redis", marks=pytest.mark.redis)], indirect=True
)
def test_a_rejection_counts_a_paused_bank_does_not_in_every_book(
    store: Store, book: RedisVelocity | None
) -> None:
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock = LoopClock()
        svc = service(store, {"sim_a": simulator(clock=clock)}, clock)
        rules = load(SHIPPED_RULES)
        svc.risk = RiskGate(store, clock, rules, book=book)
        await svc.controls.set(
            "hold", "bank", "CMB", "card", "CMB errors", "ops:li", ["sim_a"], 50_000, "CNY"
        )
        await svc.controls.set("pause", "bank", "ICBC", "card", "maintenance", "ops:li", ["sim_a"])

        held = await svc.pay(cmd(mid, "o-held", 60_000, "CMB"))
        assert held.payment.status is PaymentStatus.HELD
        await clock.sleep(5)
        rejected = await review.reject(svc, held.payment.id, "ops:li", "no answer")
        assert rejected.payment.status is PaymentStatus.FAILED
        await clock.sleep(5)
        waiting = await svc.pay(cmd(mid, "o-paused", 100, "ICBC"))
        assert waiting.payment.status is PaymentStatus.PROCESSING  # waits for the bank
        await until_settled(clock, svc, Worker(svc), waiting.payment.id)  # its deadline
        paused = await svc.get(waiting.payment.id)
        assert paused.payment.failure_code == "issuer_unavailable"
        assert not paused.attempts  # failed before any call: ops' doing, not theirs
        await clock.sleep(5)
        fraud = await svc.pay(cmd(mid, "o-fraud", 100, "ABC", "sim_decline_suspected_fraud"))
        assert fraud.payment.failure_code == "suspected_fraud"
        await clock.sleep(5)

        # three payments seen; the rejection and the decline are the customer's failures
        expected = {"count": 3.0, "failed": 2.0, "fraud": 1.0}
        want = {f"{s}_{m}_1h": expected[m] for s in SUBJECTS for m in METRICS}
        from_database = await velocity(svc, RiskGate(store, clock, rules), mid)
        assert from_database == want
        if book is not None:  # Redis counted what the database's rows say
            assert await velocity(svc, svc.risk, mid) == from_database

    run_virtual(scenario())


def test_what_counts_as_a_failure_is_named_by_the_catalogue() -> None:
    """Every code velocity treats apart is one the failure catalogue knows."""
    known = set(load_catalogue().codes())
    assert known >= NOT_THE_CUSTOMERS
    assert known >= FRAUD_LIKE_CODES | {BLOCKED_CODE}
    assert counted_failure("issuer_unavailable") == (False, False)
    assert counted_failure("insufficient_funds") == (True, False)
    assert counted_failure("generic_decline") == (True, False)  # a review's rejection
    assert counted_failure(BLOCKED_CODE) == (True, True)
    assert counted_failure("lost_or_stolen_card") == (True, True)
