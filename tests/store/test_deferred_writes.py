"""Writes held back by `deferring` land as `run` would write them, when the block ends
or before a statement that must answer, and fail as they would have failed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import exc

from paymend.domain.errors import StaleWrite
from paymend.domain.money import Money
from paymend.domain.payment import Customer, Payment, PaymentStatus
from paymend.store import payments as repo
from paymend.store.database import Store
from paymend.store.deferred import deferring
from paymend.store.prepared import Prepared
from paymend.store.tables import events, merchants, payments
from tests.store.rows import MERCHANT, NOW, payment_row

_INSERT = Prepared(payments.insert())
_EVENT = Prepared(events.insert())
_COUNT = Prepared(sa.select(sa.func.count()).select_from(payments))
_UPDATE = Prepared(
    payments.update()
    .where(payments.c.id == sa.bindparam("b_id"), payments.c.version == sa.bindparam("b_version"))
    .values(status=sa.bindparam("status"), version=sa.bindparam("version"))
)


def _payment(pid: str) -> dict[str, Any]:
    return payment_row(pid, version=0)


def _event(i: int, pid: str) -> dict[str, Any]:
    return {
        "id": f"evt_{i}",
        "merchant_id": "mer_1",
        "type": "payment.created",
        "subject_id": pid,
        "payload": {"n": i},
        "created_at": NOW + timedelta(microseconds=i),
    }


def _store(url: str) -> Store:
    store = Store(url, inline=True)
    with store.engine.begin() as conn:
        conn.execute(merchants.insert(), MERCHANT)
    return store


def _seen(conn: sa.Connection) -> int:
    """What a statement outside the prepared ones sees: it does not flush."""
    return int(conn.execute(sa.select(sa.func.count()).select_from(payments)).scalar_one())


def _rows(conn: sa.Connection, table: sa.Table) -> list[dict[str, Any]]:
    order = table.c.seq if table is events else table.c.id
    drop = {"seq"}
    return [
        {k: v for k, v in r._mapping.items() if k not in drop}
        for r in conn.execute(sa.select(table).order_by(order))
    ]


def test_held_writes_land_as_run_writes_them_and_each_learns_its_count(db_url: str) -> None:
    store = _store(db_url)
    counts: list[int] = []
    with store.engine.begin() as conn:
        with deferring(conn):
            _INSERT.write(conn, _payment("pay_a"))
            _INSERT.write(conn, _payment("pay_b"), counts.append)
            _EVENT.write_rows(conn, [_event(1, "pay_a"), _event(2, "pay_b")])
            _UPDATE.write(
                conn,
                {"b_id": "pay_zz", "b_version": 0, "status": "failed", "version": 1},
                counts.append,
            )
            # on PostgreSQL nothing was sent yet; SQLite wrote each as it came
            assert _seen(conn) == (2 if store.dialect == "sqlite" else 0)
            assert counts == ([1, 0] if store.dialect == "sqlite" else [])
        assert _seen(conn) == 2  # the block ended: all of them landed
        assert counts == [1, 0]  # the insert's row, and the update that matched none
        _INSERT.run(conn, _payment("pay_c"))  # the same rows, each run at once
        _INSERT.run(conn, _payment("pay_d"))
        _EVENT.run_rows(conn, [_event(3, "pay_c"), _event(4, "pay_d")])
        held, ran = _rows(conn, payments)[:2], _rows(conn, payments)[2:]
        assert [_but(r, "id", "order_id") for r in held] == [_but(r, "id", "order_id") for r in ran]
        stored = _rows(conn, events)
        assert [_but(r, "id", "subject_id", "payload", "created_at") for r in stored[:2]] == [
            _but(r, "id", "subject_id", "payload", "created_at") for r in stored[2:]
        ]
        assert [r["id"] for r in stored] == ["evt_1", "evt_2", "evt_3", "evt_4"]  # in order
    store.close()


def _but(row: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in keys}


def test_a_statement_that_answers_sends_the_held_writes_first(db_url: str) -> None:
    store = _store(db_url)
    with store.engine.begin() as conn, deferring(conn):
        _INSERT.write(conn, _payment("pay_a"))
        _INSERT.write(conn, _payment("pay_b"))
        assert _COUNT.first(conn, {}) == (2,)  # a prepared read sees what was written
        _UPDATE.write(conn, {"b_id": "pay_a", "b_version": 0, "status": "failed", "version": 1})
        # a prepared write that answers (its row count) goes after the held one
        again = {"b_id": "pay_a", "b_version": 1, "status": "succeeded", "version": 2}
        assert _UPDATE.run(conn, again) == 1
    with store.engine.begin() as conn:
        status = conn.execute(sa.select(payments.c.status).where(payments.c.id == "pay_a"))
        assert status.scalar_one() == "succeeded"
    store.close()


def test_a_refused_held_write_fails_the_block_and_keeps_nothing(db_url: str) -> None:
    store = _store(db_url)
    with (
        pytest.raises(exc.IntegrityError) as raised,
        store.engine.begin() as conn,
        deferring(conn),
    ):
        _INSERT.write(conn, _payment("pay_a"))
        _EVENT.write(conn, _event(1, "pay_a"))
        _EVENT.write(conn, {**_event(1, "pay_a"), "payload": {"secret": "value-xyz"}})
    assert "value-xyz" not in str(raised.value)  # SQLAlchemy's error, its values hidden
    with store.engine.begin() as conn:
        assert _seen(conn) == 0
        assert _rows(conn, events) == []
    store.close()


def test_a_block_that_raises_drops_its_writes_and_the_connection_writes_again(
    db_url: str,
) -> None:
    store = _store(db_url)
    store.engine.pool.dispose()
    with (
        pytest.raises(RuntimeError, match="changed my mind"),
        store.engine.begin() as conn,
        deferring(conn),
    ):
        _INSERT.write(conn, _payment("pay_a"))
        raise RuntimeError("changed my mind")
    with store.engine.begin() as conn:  # the same pooled connection: nothing held over
        _INSERT.write(conn, _payment("pay_b"))
        assert _seen(conn) == 1
    with store.engine.begin() as conn:
        ids = conn.execute(sa.select(payments.c.id)).scalars().all()
    assert ids == ["pay_b"]
    store.close()


def test_a_stale_payment_update_raises_when_it_runs_and_keeps_the_version(db_url: str) -> None:
    store = _store(db_url)
    with store.engine.begin() as conn:
        _INSERT.run(conn, _payment("pay_a"))
    payment = Payment(
        id="pay_a",  # type: ignore[arg-type]
        merchant_id="mer_1",  # type: ignore[arg-type]
        order_id="order-pay_a",
        amount=Money(12345, "CNY"),
        method="card",
        customer=Customer(id="c1"),
        status=PaymentStatus.PROCESSING,
        version=0,
    )
    later = NOW + timedelta(seconds=5)
    with store.engine.begin() as conn:  # someone else wrote it meanwhile
        conn.execute(payments.update().values(version=1).where(payments.c.id == "pay_a"))
    payment.status = PaymentStatus.SUCCEEDED
    with pytest.raises(StaleWrite), store.engine.begin() as conn, deferring(conn):
        repo.update_payment(conn, payment, later)
        assert payment.version == 1  # carried at once, for what is written with it
    assert payment.version == 0  # the check failed: the version read is kept
    payment.version = 1
    with store.engine.begin() as conn, deferring(conn):
        repo.update_payment(conn, payment, later)
    assert (payment.version, payment.updated_at) == (2, later)
    with store.engine.begin() as conn:
        row = conn.execute(sa.select(payments).where(payments.c.id == "pay_a")).one()
    assert (row.status, row.version) == ("succeeded", 2)
    store.close()
