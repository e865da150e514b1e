"""What every payment runs on SQLite builds no temporary b-tree: writing its row (the
order guard's predicate, migration 0028) and reading its customer's and card's history
and its subjects' velocity rows (store/risk_assessment.py). SQLite builds one for an IN
list of more than two constants in each run of a statement, about as dear as the row's
own write."""

from __future__ import annotations

import itertools
import sqlite3
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite as sqlite_dialect

from paymend.engine.risk_gate import COUNTING
from paymend.store import risk_assessment
from paymend.store.migrate import upgrade
from paymend.store.tables import payments
from tests.store.rows import payment_row


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("programs") / "paymend.db"
    upgrade(f"sqlite:///{path}")
    return path


def _temporary_btrees(path: Path, sql: str) -> int:
    """The OpenEphemeral instructions of `sql`'s program, its parameters all NULL."""
    db = sqlite3.connect(path)
    db.text_factory = bytes  # a program's operands may be binary
    try:
        program = db.execute(f"EXPLAIN {sql}", defaultdict(lambda: None))
        return sum(1 for op in program if op[1] == b"OpenEphemeral")
    finally:
        db.close()


def _sql(statement: sa.ClauseElement) -> str:
    return str(statement.compile(dialect=sqlite_dialect.dialect(paramstyle="named")))


def test_writing_a_payment_builds_no_temporary_btree(database: Path) -> None:
    row = payment_row("pay_1")
    insert = _sql(payments.insert().values({k: sa.bindparam(k) for k in row}))
    update = _sql(
        payments.update()
        .where(payments.c.id == sa.bindparam("b_id"))
        .values(status=sa.bindparam("status"), updated_at=sa.bindparam("updated_at"))
    )
    assert _temporary_btrees(database, insert) == 0
    assert _temporary_btrees(database, update) == 0
    # the measure sees one where there is one
    assert _temporary_btrees(database, "SELECT 1 WHERE :s IN ('a', 'b', 'c')") == 1


@pytest.mark.parametrize(
    "keys",
    [
        frozenset(keys)
        for n in range(5)
        for keys in itertools.combinations(("customer", "key", "device", "card"), n)
    ],
)
def test_reading_a_payments_history_builds_no_temporary_btree(
    database: Path, keys: frozenset[str]
) -> None:
    assert (
        _temporary_btrees(
            database, risk_assessment._histories_select(risk_assessment.LIST_KINDS, keys)
        )
        == 0
    )


def test_reading_velocity_rows_builds_no_temporary_btree(database: Path) -> None:
    """The velocity rows' window, amount and failure are CASEs of equalities, not IN
    lists of the failure codes."""
    every = tuple(risk_assessment.SUBJECT_NAMES)
    select = risk_assessment._recent_select(every, True, 3, COUNTING)
    assert _temporary_btrees(database, select) == 0


def test_a_failure_code_that_is_not_one_is_refused() -> None:
    odd = COUNTING._replace(fraud_like=("x' OR '1' = '1",))
    with pytest.raises(ValueError, match="not failure codes"):
        risk_assessment._recent_select(("ip",), True, 3, odd)


def test_a_window_start_without_a_zone_is_refused(database: Path) -> None:
    """A window's start binds as UTCDateTime does: a naive time is refused, not read as
    some zone's (store/risk_assessment.py `_Start`)."""
    bind = risk_assessment._Start().bind_processor(sqlite_dialect.dialect())
    with pytest.raises(ValueError, match="naive datetime"):
        bind(datetime(2026, 12, 1, 12, 0))
    assert bind(datetime(2026, 12, 1, 20, 0, tzinfo=timezone(timedelta(hours=8)))) == (
        "2026-12-01 12:00:00.000000"
    )
