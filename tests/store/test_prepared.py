"""A prepared write stores what `Connection.execute` stores, and fails as it fails."""

from __future__ import annotations

from datetime import timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import exc

from paymend.store.database import Store
from paymend.store.prepared import ROWS_AT_ONCE, Prepared
from paymend.store.tables import attempts, events, idempotency_keys, merchants, payments
from tests.store.rows import MERCHANT, NOW, payment_row


def _stored(conn: sa.Connection, table: sa.Table, pid: str) -> dict[str, Any]:
    row = conn.execute(sa.select(table).where(table.c.id == pid)).one()
    return {k: v for k, v in row._mapping.items() if k not in ("id", "order_id")}


def _merchant(conn: sa.Connection) -> None:
    conn.execute(merchants.insert(), MERCHANT)


def test_insert_and_update_store_what_execute_stores(db_url: str) -> None:
    store = Store(db_url, inline=True)
    insert = Prepared(payments.insert())
    update = Prepared(
        payments.update().where(
            payments.c.id == sa.bindparam("b_id"), payments.c.version == sa.bindparam("b_version")
        )
    )
    later = NOW.astimezone(timezone(timedelta(hours=8))) + timedelta(seconds=3)
    with store.engine.begin() as conn:
        _merchant(conn)
        conn.execute(payments.insert(), payment_row("pay_a"))
        insert.run(conn, payment_row("pay_b"))
        assert _stored(conn, payments, "pay_a") == _stored(conn, payments, "pay_b")
        changes = {"status": "succeeded", "updated_at": later, "version": 2, "b_version": 1}
        conn.execute(update.statement, {**changes, "b_id": "pay_a"})
        assert update.run(conn, {**changes, "b_id": "pay_b"}) == 1
        assert _stored(conn, payments, "pay_a") == _stored(conn, payments, "pay_b")
        assert _stored(conn, payments, "pay_b")["updated_at"] == later
        # the version check matches nothing now: no row written, and it says so
        assert update.run(conn, {**changes, "b_id": "pay_b"}) == 0
    store.close()


def _events(n: int, first: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "id": f"evt_{i}",
            "merchant_id": "mer_1",
            "type": "payment.created",
            "subject_id": "pay_a",
            "payload": {"n": i, "note": "第一" if i % 2 else None},
            "created_at": NOW + timedelta(microseconds=i),
        }
        for i in range(first, first + n)
    ]


def test_rows_written_together_store_what_execute_stores_in_order(db_url: str) -> None:
    store = Store(db_url, inline=True)
    insert = Prepared(events.insert())
    rows = _events(9)
    with store.engine.begin() as conn:
        _merchant(conn)
        conn.execute(events.insert(), rows[0])
        assert insert.run_many(conn, rows[1:4]) == 3  # the driver's loop
        assert insert.run_rows(conn, rows[4:7]) == 3  # one statement, a VALUES list
        assert insert.run_rows(conn, rows[7:8]) == 1  # one row: the plain statement
        assert insert.run_rows(conn, []) == 0
        insert.run(conn, rows[8])
        many = _events(ROWS_AT_ONCE + 1, first=9)  # past the bound: the driver's loop
        assert insert.run_rows(conn, many) == len(many)
        rows += many
        stored = conn.execute(sa.select(events).order_by(events.c.seq)).all()
        assert [{k: v for k, v in r._mapping.items() if k != "seq"} for r in stored] == [
            {**r, "published_at": None} for r in rows
        ]
    with pytest.raises(exc.IntegrityError), store.engine.begin() as conn:
        insert.run_rows(conn, [{**rows[0], "id": "evt_new"}, rows[0]])  # evt_0 is taken
    with store.engine.begin() as conn:  # neither row of the refused statement is kept
        assert conn.execute(sa.select(sa.func.count()).select_from(events)).scalar() == len(rows)
    with pytest.raises(TypeError, match="not an INSERT"), store.engine.begin() as conn:
        Prepared(events.update()).run_rows(conn, rows[:2])
    store.close()


def test_a_refused_write_raises_sqlalchemys_error_without_its_values(db_url: str) -> None:
    store = Store(db_url, inline=True)
    insert = Prepared(idempotency_keys.insert())
    row = {
        "merchant_id": "mer_1",
        "key": "k-1",
        "request_hash": "secret-hash-value",
        "request_path": "/v1/payments",
        "status": "in_progress",
        "created_at": NOW,
        "updated_at": NOW,
    }
    with store.engine.begin() as conn:
        _merchant(conn)
    with pytest.raises(exc.IntegrityError) as raised, store.engine.begin() as conn:
        insert.run(conn, row)
        insert.run(conn, row)
    assert "secret-hash-value" not in str(raised.value)
    with store.engine.begin() as conn:  # the failed transaction left nothing
        assert conn.execute(sa.select(sa.func.count()).select_from(idempotency_keys)).scalar() == 0
    store.close()


def test_values_fixed_in_the_statement_are_bound(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 't.db'}", inline=True)
    with store.engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (a TEXT, b TEXT)"))
        t = sa.table("t", sa.column("a"), sa.column("b"))
        set_b = Prepared(t.update().where(t.c.a == "x").values(b=sa.bindparam("b")))
        conn.execute(sa.text("INSERT INTO t VALUES ('x', NULL), ('y', NULL)"))
        assert set_b.run(conn, {"b": "done"}) == 1
        assert conn.execute(sa.text("SELECT a, b FROM t ORDER BY a")).all() == [
            ("x", "done"),
            ("y", None),
        ]
    store.close()


def test_a_statement_it_cannot_run_is_refused_when_first_run(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 't.db'}", inline=True)
    meta = sa.MetaData()
    t = sa.Table("t", meta, sa.Column("a", sa.Text), sa.Column("b", sa.Text, default="x"))
    with store.engine.begin() as conn:
        meta.create_all(conn)
        with pytest.raises(TypeError, match="Python-side column defaults"):
            Prepared(t.insert()).run(conn, {"a": "1"})
        with pytest.raises(TypeError, match="not given"):
            Prepared(t.update().values(b=sa.bindparam("nb"))).run(conn, {})
        with pytest.raises(TypeError, match="expanding"):
            Prepared(t.delete().where(t.c.a.in_(sa.bindparam("xs", expanding=True)))).run(
                conn, {"xs": ["1"]}
            )
    store.close()


def test_attempt_rows_match(db_url: str) -> None:
    store = Store(db_url, inline=True)
    with store.engine.begin() as conn:
        _merchant(conn)
        conn.execute(payments.insert(), payment_row("pay_a"))
        base = {
            "payment_id": "pay_a",
            "provider": "sim_a",
            "status": "pending",
            "request": {"amount": 12345, "masked": "4111********1111"},
            "created_at": NOW,
            "owner": None,
        }
        conn.execute(attempts.insert(), {**base, "id": "att_a", "seq": 1, "idempotency_key": "a"})
        Prepared(attempts.insert()).run(
            conn, {**base, "id": "att_b", "seq": 2, "idempotency_key": "b"}
        )
        # a JSON column's None is stored as `execute` stores it (JSON null, not SQL NULL)
        conn.execute(attempts.update().values(next_action=None))
        Prepared(attempts.update().where(attempts.c.id == sa.bindparam("b_id"))).run(
            conn, {"next_action": None, "b_id": "att_b"}
        )
        nulls = conn.execute(
            sa.select(attempts.c.id, attempts.c.next_action.is_(None)).order_by(attempts.c.id)
        ).all()
        assert nulls[0][1] == nulls[1][1]
        a, b = _stored(conn, attempts, "att_a"), _stored(conn, attempts, "att_b")
        assert {k: v for k, v in a.items() if k not in ("seq", "idempotency_key")} == {
            k: v for k, v in b.items() if k not in ("seq", "idempotency_key")
        }
    store.close()


def test_first_reads_a_row_as_the_driver_returns_it(db_url: str) -> None:
    store = Store(db_url, inline=True)
    holder = Prepared(
        sa.select(payments.c.id, payments.c.amount)
        .where(
            payments.c.merchant_id == sa.bindparam("m"),
            payments.c.status.in_([sa.literal("processing")]),
        )
        .limit(1)
    )
    with store.engine.begin() as conn:
        _merchant(conn)
        assert holder.first(conn, {"m": "mer_1"}) is None
        conn.execute(payments.insert(), payment_row("pay_a"))
        assert holder.first(conn, {"m": "mer_1"}) == ("pay_a", 12345)
        assert holder.first(conn, {"m": "mer_2"}) is None
    store.close()


def test_all_converts_each_column_as_a_result_would(db_url: str) -> None:
    store = Store(db_url, inline=True)
    text = (
        sa.text(
            "SELECT id, created_at, amount, EXISTS (SELECT 1 FROM payments WHERE amount > :a)"
            " AS big FROM payments WHERE merchant_id = :m ORDER BY id"
        )
        .bindparams(sa.bindparam("a", type_=sa.Integer()))
        .columns(
            sa.column("id"),
            sa.column("created_at", payments.c.created_at.type),
            sa.column("amount"),
            sa.column("big", sa.Boolean()),
        )
    )
    with store.engine.begin() as conn:
        _merchant(conn)
        conn.execute(payments.insert(), payment_row("pay_a"))
        conn.execute(payments.insert(), payment_row("pay_b", amount=7))
        params = {"m": "mer_1", "a": 100}
        expected = [tuple(r) for r in conn.execute(text, params)]
        assert Prepared(text).all(conn, params) == expected
        assert expected[0][1] == NOW and expected[0][3] is True  # converted, not raw
        assert Prepared(text).all(conn, {"m": "mer_2", "a": 1}) == []
    store.close()


def test_a_numeric_column_is_converted_by_the_type_the_driver_names(db_url: str) -> None:
    # PostgreSQL's numeric result processors need the driver's type of the column
    store = Store(db_url, inline=True)
    total = sa.select(
        sa.func.sum(sa.cast(payments.c.amount, sa.Numeric(14, 2))),
        sa.func.count(),
    ).where(payments.c.merchant_id == sa.bindparam("m"))
    with store.engine.begin() as conn:
        _merchant(conn)
        conn.execute(payments.insert(), payment_row("pay_a"))
        expected = tuple(conn.execute(total, {"m": "mer_1"}).one())
        assert Prepared(total).first(conn, {"m": "mer_1"}) == expected
        assert Prepared(total).all(conn, {"m": "mer_1"}) == [expected]
    store.close()
