"""Velocity shared through Redis: two processes, each with its own database, see one
card-testing device's payments together and cut it off as one would."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from paymend.domain.money import Money
from paymend.domain.payment import Customer, PaymentStatus
from paymend.engine.clock import LoopClock
from paymend.engine.commands import PayCommand
from paymend.engine.ids import IdFactory
from paymend.engine.risk_gate import RiskGate
from paymend.engine.runtime import build_payment_service
from paymend.engine.settings import EngineSettings
from paymend.engine.virtual_time import run_virtual
from paymend.engine.worker import Worker
from paymend.risk.features import subjects
from paymend.risk.redis_velocity import RedisVelocity
from paymend.risk.rules import SHIPPED_RULES, load
from paymend.risk.velocity import aggregate
from paymend.store import risk as risk_repo
from paymend.store.database import Store
from tests.helpers import make_merchant, service, simulator
from tests.logs import captured


@pytest.fixture
def store(sqlite_url: str) -> Iterator[Store]:
    s = Store(sqlite_url, inline=True)
    yield s
    s.close()


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    name = f"paymend-test-{uuid.uuid4().hex[:8]}"
    yield name
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(f"{name}:*"):
        client.delete(key)
    client.close()


@pytest.mark.redis
def test_two_processes_count_one_device_together(
    redis_url: str, prefix: str, tmp_path: Path, sqlite_template: Path
) -> None:
    stores = []
    for name in ("a", "b"):
        path = tmp_path / f"{name}.db"
        path.write_bytes(sqlite_template.read_bytes())
        stores.append(Store(f"sqlite:///{path}", inline=True))
    mids = [make_merchant(s)[0] for s in stores]
    rules = load(SHIPPED_RULES)

    async def scenario() -> None:
        clock = LoopClock()
        sims, services = [], []
        for n, store in enumerate(stores):
            sim = simulator(clock=clock)
            book = RedisVelocity(redis.Redis.from_url(redis_url), prefix)
            svc = build_payment_service(
                store,
                {"sim_a": sim},
                clock,
                EngineSettings(routing=("sim_a",), seed=1),
                IdFactory(seed=n),  # two processes never draw the same ids
                risk=RiskGate(store, clock, rules, book=book),
            )
            sims.append(sim)
            services.append(svc)
        statuses = []
        for i in range(12):  # alternating processes, one device, a new card each time
            k = i % 2
            view = await services[k].pay(
                PayCommand(
                    merchant_id=mids[k],
                    order_id=f"o{i}",
                    amount=Money(100, "CNY"),
                    method="card",
                    token="sim_decline_suspected_fraud",
                    customer=Customer(None, "en"),
                    metadata={"device_id": "dev-x", "card_fingerprint": f"card-{i}"},
                )
            )
            statuses.append(view.payment.failure_code)
            await clock.sleep(3)
        # three fraud-like declines across both processes, then both refuse the device
        assert sum(s.calls for s in sims) == 3
        assert statuses[:3] == ["suspected_fraud"] * 3
        assert statuses[3:] == ["risk_declined"] * 9
        book = RedisVelocity(redis.Redis.from_url(redis_url), prefix)
        who = subjects("m", None, None, {"device_id": "dev-x"})
        seen = book.history(who, clock.now())
        assert seen is not None  # Redis answered
        counted = aggregate(seen, clock.now(), "CNY")
        assert counted["device_count_1h"] == 12 and counted["device_cards_1h"] == 12
        assert counted["device_fraud_1h"] == 12 and counted["device_amount_1h"] == 12.0
        assert counted["device_count_10m"] == 12
        await clock.sleep(3600)
        seen = book.history(who, clock.now())
        assert seen is not None
        later = aggregate(seen, clock.now(), "CNY")
        assert later["device_count_1h"] == 0 and later["device_count_24h"] == 12

    try:
        run_virtual(scenario())
    finally:
        for s in stores:
            s.close()


@pytest.mark.parametrize("counters", ["database", pytest.param("redis", marks=pytest.mark.redis)])
def test_a_failure_the_worker_settles_later_counts_like_one_at_once(
    store: Store, request: pytest.FixtureRequest, counters: str
) -> None:
    """An unknown outcome the worker later finds was no charge fails the payment after
    the checkout answered: the next payment of the card sees that failure in its
    velocity, from Redis as from the database's rows."""
    mid, _ = make_merchant(store)
    book = None
    if counters == "redis":
        book = RedisVelocity(
            redis.Redis.from_url(request.getfixturevalue("redis_url")),
            request.getfixturevalue("prefix"),
        )

    async def scenario() -> None:
        clock = LoopClock()
        # answers take the whole checkout budget: the outcome is left to the worker
        sim = simulator(clock=clock, hang_s=60, latency_p50_ms=3000, latency_p99_ms=3000)
        svc = service(store, {"sim_a": sim}, clock, timeout_s=5, deadline_s=3)
        svc.risk = RiskGate(store, clock, load(SHIPPED_RULES), book=book)

        def cmd(order: str, token: str) -> PayCommand:
            return PayCommand(
                merchant_id=mid,
                order_id=order,
                amount=Money(100, "CNY"),
                method="card",
                token=token,
                customer=Customer(None, "en"),
                metadata={"card_fingerprint": "card-late"},
            )

        first = await svc.pay(cmd("o1", "sim_timeout"))
        assert first.payment.status is PaymentStatus.PROCESSING
        await clock.sleep(2)
        assert (await Worker(svc).sweep()).done == {"settle_attempt": 1}
        settled = await svc.get(first.payment.id)
        assert settled.payment.status is PaymentStatus.FAILED
        second = await svc.pay(cmd("o2", "sim_approve"))
        decided = store.run_sync(lambda conn: risk_repo.decision(conn, second.payment.id))
        assert decided is not None
        assert decided["features"]["card_failed_1h"] == 1
        assert decided["features"]["card_count_1h"] == 1

    run_virtual(scenario())


def test_risk_control_without_redis_reads_the_database_and_never_stops_a_payment(
    store: Store,
) -> None:
    """Redis gone: the payment is assessed on the database's rows, recorded as it ends,
    and the counts Redis could not take are logged as lost, never raised."""
    mid, _ = make_merchant(store)
    # no retries: redis-py's default backs off for seconds before giving up
    down = redis.Redis(host="127.0.0.1", port=1, retry=Retry(NoBackoff(), 0))
    gone = RedisVelocity(down)

    async def scenario() -> None:
        clock = LoopClock()
        svc = service(store, {"sim_a": simulator(clock=clock)}, clock)
        svc.risk = RiskGate(store, clock, load(SHIPPED_RULES), book=gone)
        with captured() as logs:
            paid = await svc.pay(
                PayCommand(
                    merchant_id=mid,
                    order_id="o1",
                    amount=Money(100, "CNY"),
                    method="card",
                    token="sim_decline_INSUFFICIENT_FUNDS",
                    customer=Customer(None, "en"),
                    metadata={"card_fingerprint": "card-gone"},
                )
            )
        assert paid.payment.status is PaymentStatus.FAILED
        warned = [line["event"] for line in logs.lines() if line["level"] == "warning"]
        assert warned == ["risk_velocity_unavailable", "risk_count_lost"]

    run_virtual(scenario())
