"""Writes held back on PostgreSQL and sent as one statement: `deferring`.

On PostgreSQL every statement is a round trip to the server, and a round trip costs
both sides more than a small write's own work. Inside `deferring(conn)`, the writes
nobody waits on (`Prepared.write`, `Prepared.write_rows`) wait instead, and go to the
server together as one statement, each a data-modifying CTE, which answers each one's
row count: when the scope ends, or before the next statement that must answer at once
(`Prepared.run`, `first`, ...). The writes of one such statement see the same snapshot,
not each other's rows (constraints are checked once all ran): they must not depend on
each other, as the rows of one payment's change do not. A statement run through
`conn.execute` in the scope does not wait for them; the scopes hold only `Prepared`
statements. On SQLite, where there is no round trip to save, a write runs when
written, as `run` does.

This module knows writes only as SQL text and driver values, so that store/prepared.py,
which queues them, is the only one of the two that imports the other.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection

from paymend.store.driver import driver_error

__all__ = ["QUEUE", "Waiting", "Written", "deferring", "flush"]

Written = Callable[[int], None]  # told a deferred write's row count once it ran
# the attribute of a Connection in `deferring` that holds its writes waiting (an
# attribute, not `Connection.info`: every statement looks, and `info` is three
# properties deep); read with getattr(conn, QUEUE, None)
QUEUE = "_paymend_deferred"


@dataclass(slots=True)
class Waiting:
    """A write held back by `deferring`: its SQL (the driver's paramstyle), its
    driver's values, who to tell its row count."""

    sql: str
    values: Any  # the named parameters of PostgreSQL's driver
    then: Written | None


class deferring:  # noqa: N801 - used as a function: `with deferring(conn):`
    """Hold this transaction's `write`s back and send them as one statement (see the
    module) when the block ends, or before a statement that answers at once. On SQLite,
    or inside another such block, nothing changes. A block that raises drops what it
    held: its transaction is rolled back. (A class, not a generator: on SQLite it is a
    few attribute lookups a transaction.)"""

    __slots__ = ("_conn", "_waiting")

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._waiting: list[Waiting] | None = None

    def __enter__(self) -> None:
        conn = self._conn
        if conn.dialect.name == "postgresql" and getattr(conn, QUEUE, None) is None:
            self._waiting = []
            setattr(conn, QUEUE, self._waiting)

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        waiting = self._waiting
        if waiting is None:
            return
        try:
            if kind is None and waiting:
                flush(self._conn, waiting)
        finally:
            delattr(self._conn, QUEUE)


_PLACEHOLDER = re.compile(r"%%|%\((\w+)\)s")
# what SQLAlchemy adds to an INSERT on PostgreSQL to read back a generated key (the
# events' `seq`): a plain list of columns at the end
_KEYS_BACK = re.compile(r"\s+RETURNING\s+[\w.]+(?:\s*,\s*[\w.]+)*\s*$")


@dataclass(frozen=True, slots=True)
class _Together:
    """The statement of a list of writes, in PostgreSQL's own `$n` placeholders, and
    which write's parameter each `$n` is."""

    sql: str
    order: tuple[tuple[int, str], ...]


_TOGETHER: dict[tuple[str, ...], _Together] = {}  # by the writes' statements, in order


def _together(statements: tuple[str, ...]) -> _Together:
    """One statement for `statements`: each a CTE that returns a row per row written,
    then their counts. Its placeholders are PostgreSQL's own, run on psycopg's
    RawCursor: psycopg parses and caches a statement's placeholders only up to 50
    parameters and 4 KiB (psycopg/_queries.py `MAX_CACHED_STATEMENT_PARAMS`), which
    one payment's writes pass, and would parse this one again on every run."""
    found = _TOGETHER.get(statements)
    if found is not None:
        return found
    parts, order, numbers = [], [], {}

    def native(match: re.Match[str], i: int) -> str:
        if match.group(1) is None:  # "%%": a percent sign in the pyformat text
            return "%"
        key = (i, match.group(1))
        if key not in numbers:
            order.append(key)
            numbers[key] = len(order)
        return f"${numbers[key]}"

    for i, text in enumerate(statements):
        text = _KEYS_BACK.sub("", text)  # an INSERT's generated key: nobody reads it
        if "RETURNING" in text.upper():
            raise TypeError(f"a deferred write returns rows: {text[:60]}")
        body = _PLACEHOLDER.sub(lambda m, i=i: native(m, i), text)  # type: ignore[misc]
        parts.append(f"w{i} AS ({body} RETURNING 1)")
    counts = ", ".join(f"(SELECT count(*) FROM w{i})" for i in range(len(statements)))  # noqa: S608 - compiled statements and indexes only
    found = _TOGETHER[statements] = _Together(
        f"WITH {', '.join(parts)} SELECT {counts}", tuple(order)
    )
    return found


def flush(conn: Connection, waiting: list[Waiting]) -> None:
    """Run the writes waiting, in one statement (one alone as itself), and tell each its
    row count. The list is emptied first: a `then` that raises leaves nothing behind."""
    import psycopg  # the only driver that holds writes back (`deferring`)

    writes = waiting[:]
    waiting.clear()
    raw = conn.connection.driver_connection
    assert raw is not None
    if len(writes) == 1:
        sql, params = writes[0].sql, writes[0].values
        cursor = raw.cursor()
    else:
        together = _together(tuple(w.sql for w in writes))
        sql = together.sql
        params = [writes[i].values[name] for i, name in together.order]
        cursor = psycopg.RawCursor(raw)
    try:
        cursor.execute(sql, params)
        counts = [int(cursor.rowcount)] if len(writes) == 1 else cursor.fetchone()
    except conn.dialect.loaded_dbapi.Error as error:
        raise driver_error(conn, sql, error) from error
    finally:
        cursor.close()
    for write, count in zip(writes, counts, strict=True):
        if write.then is not None:
            write.then(int(count))
