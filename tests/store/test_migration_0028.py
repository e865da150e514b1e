"""Migration 0028: on SQLite the order guard's predicate is comparisons, so writing a
payment builds no temporary b-tree; the guard holds the same payments and refuses the
same second payment, before, after and back."""

from __future__ import annotations

import sqlite3

import pytest
import sqlalchemy as sa

from paymend.store.migrate import downgrade, upgrade
from paymend.store.tables import merchants, payments
from tests.store.rows import MERCHANT, payment_row

_GUARD = "uq_payments_one_per_order"


def _predicate(conn: sa.Connection) -> str:
    if conn.dialect.name == "sqlite":
        found = conn.execute(
            sa.text("SELECT sql FROM sqlite_master WHERE name = :n"), {"n": _GUARD}
        ).scalar_one()
    else:
        found = conn.execute(
            sa.text("SELECT indexdef FROM pg_indexes WHERE indexname = :n"), {"n": _GUARD}
        ).scalar_one()
    return str(found).split("WHERE", 1)[1]


def _temporary_btrees(path: str) -> int:
    """How many temporary b-trees SQLite's program for a payment's insert opens."""
    row = payment_row("pay_plan")
    names = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    values = tuple(v if isinstance(v, str | int) else None for v in row.values())
    db = sqlite3.connect(path)
    db.text_factory = bytes  # a program's operands may be binary
    try:
        plan = db.execute(f"EXPLAIN INSERT INTO payments ({names}) VALUES ({marks})", values)
        return sum(1 for r in plan if r[1] == b"OpenEphemeral")
    finally:
        db.close()


def _guard_holds(engine: sa.Engine, tag: str) -> None:
    """A second payment on an order held by one in flight is refused; after a failed
    one, or as part of a split payment, it is taken."""
    with engine.begin() as conn:
        conn.execute(payments.insert(), payment_row(f"pay_{tag}_1", order_id=f"o-{tag}"))
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(payments.insert(), payment_row(f"pay_{tag}_2", order_id=f"o-{tag}"))
    with engine.begin() as conn:
        conn.execute(
            payments.update().where(payments.c.id == f"pay_{tag}_1").values(status="failed")
        )
        conn.execute(payments.insert(), payment_row(f"pay_{tag}_3", order_id=f"o-{tag}"))
        conn.execute(
            payments.insert(), payment_row(f"pay_{tag}_4", order_id=f"o-{tag}", split=True)
        )
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(payments.update().where(payments.c.id == f"pay_{tag}_4").values(split=False))


def test_0028_writes_the_guard_as_comparisons_on_sqlite_and_guards_the_same(
    empty_url: str,
) -> None:
    upgrade(empty_url, "0027")
    engine = sa.create_engine(empty_url)
    sqlite = engine.dialect.name == "sqlite"
    try:
        with engine.begin() as conn:
            conn.execute(merchants.insert(), MERCHANT)
            before = _predicate(conn)
        if sqlite:
            assert _temporary_btrees(engine.url.database or "") == 1
        assert "IN (" in before or "ANY (" in before
        _guard_holds(engine, "before")

        upgrade(empty_url)
        with engine.begin() as conn:
            after = _predicate(conn)
            if sqlite:
                assert " IN " not in after
                assert after.count("status = '") == 6
            else:
                assert after == before
        if sqlite:
            assert _temporary_btrees(engine.url.database or "") == 0
        _guard_holds(engine, "after")

        downgrade(empty_url, "0027")
        with engine.begin() as conn:
            assert _predicate(conn) == before
        _guard_holds(engine, "back")
    finally:
        engine.dispose()
