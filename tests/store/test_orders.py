"""The database itself keeps one order to one payment in flight or paid, on SQLite and
PostgreSQL, and the migration that brings the rule keeps the history it finds."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import exc

from paymend.domain.errors import PaymendError
from paymend.domain.ids import MerchantId, PaymentId
from paymend.domain.money import Money
from paymend.domain.payment import Payment, PaymentStatus
from paymend.engine.clock import LoopClock
from paymend.store import payments as repo
from paymend.store.database import Store
from paymend.store.migrate import upgrade
from tests.engine.test_pay import pay_cmd
from tests.helpers import NOW, count_rows, make_merchant, service, simulator


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url, inline=True)
    yield s
    s.close()


def holding(mid: MerchantId, pid: str, status: PaymentStatus, *, split: bool = False) -> Payment:
    p = Payment(PaymentId(pid), mid, "o-1", Money(1000, "CNY"), "card", split=split)
    p.status = status
    return p


def insert(store: Store, p: Payment) -> None:
    store.run_sync(lambda c: repo.insert_payment(c, p, NOW))


def test_the_database_refuses_a_second_payment_holding_an_order(store: Store) -> None:
    mid, _ = make_merchant(store)
    insert(store, holding(mid, "pay_failed", PaymentStatus.FAILED))
    insert(store, holding(mid, "pay_canceled", PaymentStatus.CANCELED))
    insert(store, holding(mid, "pay_refunded", PaymentStatus.REFUNDED))
    insert(store, holding(mid, "pay_1", PaymentStatus.PROCESSING))
    for status in (PaymentStatus.PROCESSING, PaymentStatus.SUCCEEDED, PaymentStatus.HELD):
        with pytest.raises(exc.IntegrityError) as info:
            insert(store, holding(mid, f"pay_{status}", status))
        assert repo.is_order_conflict(info.value)
    insert(store, holding(mid, "pay_part_1", PaymentStatus.SUCCEEDED, split=True))
    insert(store, holding(mid, "pay_part_2", PaymentStatus.PROCESSING, split=True))
    other, _ = make_merchant(store, "other-shop")
    insert(store, holding(other, "pay_elsewhere", PaymentStatus.SUCCEEDED))  # its own order
    assert count_rows(store)["payments"] == 7


@pytest.mark.postgres
def test_an_insert_the_index_refuses_is_the_same_409(postgres_url: str) -> None:
    """A writer that skips the check (here: a bare transaction) holds the order while a
    checkout checks and inserts: the index makes the checkout wait, then refuses it, and
    the refusal names the payment that won."""
    store = Store(postgres_url, inline=True)
    mid, _ = make_merchant(store)
    engine = sa.create_engine(postgres_url)
    outcome: list[BaseException] = []

    def checkout() -> None:
        clock = LoopClock()
        svc = service(store, {"sim_a": simulator(clock=clock)}, clock)
        try:
            asyncio.run(svc.pay(replace(pay_cmd(mid, order="o-1"))))
        except BaseException as error:  # noqa: BLE001 - handed to the test thread
            outcome.append(error)

    try:
        with engine.connect() as other:
            tx = other.begin()
            repo.insert_payment(other, holding(mid, "pay_first", PaymentStatus.PROCESSING), NOW)
            racer = threading.Thread(target=checkout)
            racer.start()
            deadline = time.monotonic() + 30
            while not _waits_on_a_lock(engine):
                assert time.monotonic() < deadline and racer.is_alive(), outcome
                time.sleep(0.01)  # polling a real server's state, bounded
            tx.commit()
            racer.join(30)
        (error,) = outcome
        assert isinstance(error, PaymendError)
        assert (error.code, error.extra) == (
            "order_payment_in_progress",
            {"payment_id": "pay_first"},
        )
        assert count_rows(store)["payments"] == 1 and count_rows(store)["attempts"] == 0
    finally:
        engine.dispose()
        store.close()


def _waits_on_a_lock(engine: sa.Engine) -> bool:
    with engine.connect() as conn:
        waiting = conn.execute(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database()"
            )
        ).scalar_one()
    return bool(waiting)


def test_the_migration_keeps_orders_paid_twice_before_it(empty_url: str) -> None:
    """Until 0010 an order could be paid twice: the earliest payment keeps the order, the
    later ones become split payments; nothing else changes."""
    upgrade(empty_url, "0006")
    engine = sa.create_engine(empty_url)
    columns = (
        "id, merchant_id, order_id, amount, currency, method, status, amount_refunded, "
        "amount_refund_pending, customer, metadata, version, created_at, updated_at"
    )
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO merchants (id, name, api_key_hash, api_key_hint, settings, "
                    "created_at) VALUES ('mer_1', 'shop', 'h', 'sk_…', '{}', :at)"
                ),
                {"at": NOW},
            )
            for i, (order, status) in enumerate(
                [
                    ("o-twice", "succeeded"),
                    ("o-twice", "succeeded"),
                    ("o-twice", "processing"),
                    ("o-twice", "failed"),
                    ("o-once", "succeeded"),
                ]
            ):
                conn.execute(
                    sa.text(
                        f"INSERT INTO payments ({columns}) VALUES (:id, 'mer_1', :order, 1000, "
                        "'CNY', 'card', :status, 0, 0, '{}', '{}', 0, :at, :at)"
                    ),
                    {"id": f"pay_{i}", "order": order, "status": status, "at": NOW + timedelta(i)},
                )
        upgrade(empty_url)
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT id, split FROM payments ORDER BY id")).all()
        assert [(r.id, bool(r.split)) for r in rows] == [
            ("pay_0", False),
            ("pay_1", True),
            ("pay_2", True),
            ("pay_3", False),
            ("pay_4", False),
        ]
        store = Store(empty_url, inline=True)
        try:
            again = holding(MerchantId("mer_1"), "pay_new", PaymentStatus.PROCESSING)
            with pytest.raises(exc.IntegrityError):
                insert(store, replace(again, order_id="o-twice"))
            insert(store, replace(again, order_id="o-new"))
        finally:
            store.close()
    finally:
        engine.dispose()
