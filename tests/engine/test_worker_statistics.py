"""The worker keeps SQLite's planner statistics current as payments pile up after the
last `paymend db upgrade` (store/statistics.py): gathered when the payments outgrew
them, checked at most once an hour on the worker's clock; PostgreSQL is left to its
autovacuum."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa

from paymend.domain.ids import MerchantId, PaymentId
from paymend.domain.money import Money
from paymend.domain.payment import Customer, Payment, PaymentStatus
from paymend.engine.clock import LoopClock
from paymend.engine.virtual_time import run_virtual
from paymend.engine.worker import Worker
from paymend.store import statistics
from paymend.store.database import Store
from paymend.store.payment_rows import payment_row
from paymend.store.pii import customer_columns
from paymend.store.tables import payments
from tests.helpers import NOW, make_merchant, service, simulator


@pytest.fixture
def sqlite_store(sqlite_url: str) -> Iterator[Store]:
    s = Store(sqlite_url, inline=True)
    yield s
    s.close()


@pytest.fixture
def postgres_store(postgres_url: str) -> Iterator[Store]:
    s = Store(postgres_url, inline=True)
    yield s
    s.close()


def add_payments(store: Store, merchant_id: MerchantId, start: int, n: int) -> None:
    """`n` paid payments written straight into the table, as traffic leaves them."""
    rows = []
    for i in range(start, start + n):
        at = NOW + timedelta(seconds=i)
        p = Payment(
            PaymentId(f"pay_stat{i:06d}"),
            merchant_id,
            f"order-{i}",
            Money(1000, "CNY"),
            "card",
            status=PaymentStatus.SUCCEEDED,
            customer=Customer(id=f"c-{i}", locale="zh-CN"),
            created_at=at,
            updated_at=at,
        )
        rows.append(
            {**payment_row(p), **customer_columns(None, p.id, p.customer), "created_at": at}
        )
    store.run_sync(lambda conn: conn.execute(payments.insert(), rows))


def test_the_worker_gathers_statistics_once_the_payments_outgrew_them(
    sqlite_store: Store,
) -> None:
    store = sqlite_store
    merchant_id, _ = make_merchant(store)
    clock = LoopClock()
    worker = Worker(service(store, {"sim_a": simulator(clock=clock)}, clock))
    add_payments(store, merchant_id, 0, statistics.MIN_ROWS // 2)
    kept = worker.statistics

    async def scenario() -> None:
        await worker.sweep()
        assert not store.run_sync(statistics.has_statistics)  # too few to matter
        add_payments(store, merchant_id, 500, 1500)  # 2000, and none gathered yet
        await worker.sweep()
        assert not store.run_sync(statistics.has_statistics)  # checked at the first sweep
        await clock.sleep(worker.settings.statistics_every_s)
        await worker.sweep()
        assert store.run_sync(statistics.has_statistics) and kept.stands_for == 2000
        add_payments(store, merchant_id, 2000, 1500)  # 3500: under twice as many
        await clock.sleep(worker.settings.statistics_every_s)
        await worker.sweep()
        assert kept.stands_for == 2000
        add_payments(store, merchant_id, 3500, 1500)  # 5000: 2.5 times as many
        await clock.sleep(60)
        await worker.sweep()  # checked a minute ago: not yet
        assert kept.stands_for == 2000
        await clock.sleep(worker.settings.statistics_every_s)
        await worker.sweep()
        assert kept.stands_for == 5000

    run_virtual(scenario())
    # the planner now reads an order id through the order's index
    plan = store.run_sync(
        lambda conn: conn.execute(
            sa.text(
                "EXPLAIN QUERY PLAN SELECT id FROM payments WHERE merchant_id = :m"
                " AND order_id = :o ORDER BY created_at DESC, id DESC LIMIT 50"
            ),
            {"m": merchant_id, "o": "order-7"},
        ).all()
    )
    assert any("order" in str(row[-1]).lower() for row in plan), plan


@pytest.mark.postgres
def test_nothing_is_gathered_on_postgresql(postgres_store: Store) -> None:
    store = postgres_store
    merchant_id, _ = make_merchant(store)
    add_payments(store, merchant_id, 0, statistics.MIN_ROWS * 2)
    assert store.run_sync(statistics.PlannerStatistics().refresh) is False
