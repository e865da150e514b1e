"""The SQLAlchemy engine paymend's store runs on, tuned for SQLite or PostgreSQL.

On SQLite: WAL, one writer that takes the write lock at BEGIN, pages read through a
memory map, and a BEGIN that either waits for another process's lock (on the store's
thread) or refuses at once (`Busy`, on the event loop: `no_wait`). store/database.py's
`Store` runs every transaction on it.
"""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from paymend.store import json_text
from paymend.store.pg_connections import PING_IDLE_S, ping_when_idle

__all__ = ["Busy", "create_db_engine", "is_sqlite", "no_wait", "redacted_url"]

BUSY_TIMEOUT_MS = 30_000  # how long a SQLite writer waits for another process's lock
# SQLite reads the database file's pages through a memory map of up to this much, not a
# pread() and a copy each (https://www.sqlite.org/mmap.html): the pages a payment reads
# that are not in the connection's own cache (an earlier payment's rows, for risk
# control's history) come from the OS page cache, shared by every process, without a
# system call. Pages still in the write-ahead log are read as before.
MMAP_BYTES = 256 * 1024 * 1024
_BUSY_KEY = "paymend_busy_timeout_ms"  # the connection's busy timeout now, in its info


def redacted_url(url: str) -> str:
    """A database URL with its password hidden, to show in messages."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a URL that does not parse is shown as nothing
        return "<database url>"


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def _bind_without_lookup() -> None:
    """Bind None and booleans to SQLite without a failed attribute lookup each.

    sqlite3 binds an int, a float, a str or a bytearray as it is; any other value (None,
    a bool) it first offers to an adapter registered for its type and, finding none, to
    `PrepareProtocol.__adapt__`: a lookup on a class that fails, and builds and drops an
    AttributeError every time (CPython's Modules/_sqlite/microprotocols.c). That is
    about 0.25 us a parameter, and a payment binds some twenty Nones. An adapter for each
    gives what sqlite3 binds anyway: None stays None (`{}.get`, a function in C that
    answers None for any key), a bool becomes its integer. sqlite3's adapters belong to
    the process: any other SQLite connection in it binds these the same way."""
    sqlite3.register_adapter(type(None), _NONE.get)
    sqlite3.register_adapter(bool, int)


_NONE: dict[object, None] = {}


def create_db_engine(url: str, *, pool_size: int = 8, ping_idle_s: float = PING_IDLE_S) -> Engine:
    """An Engine tuned for paymend's access pattern on SQLite or PostgreSQL.

    `hide_parameters`: a database error's text never carries the statement's parameters
    (tokens, metadata, customer data), so no log line or error message can leak them."""
    if is_sqlite(url):
        _bind_without_lookup()
        # the store holds one connection for its transactions (`Store._held`); the pool
        # lends one to its checkpoints (store/checkpoints.py) and up to two more to code that
        # opens its own (a CLI command, a test's check)
        engine = sa.create_engine(
            url,
            pool_size=1,
            max_overflow=3,
            pool_timeout=30,
            connect_args={"check_same_thread": False, "timeout": 30},
            hide_parameters=True,
            json_serializer=json_text.dumps,
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            # savepoints (`_together`) keep their undo pages in memory, not a temporary file
            cur.execute("PRAGMA temp_store=MEMORY")
            cur.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
            cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            cur.close()
            record.info[_BUSY_KEY] = BUSY_TIMEOUT_MS

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            # take the write lock up front: no deadlock when two processes upgrade a read.
            # On the event loop never wait for it (busy timeout 0), on the thread wait;
            # the timeout is changed only when the path changes, so the common BEGIN on
            # the loop is one statement, not three
            fairy = conn.connection
            raw = fairy.dbapi_connection
            assert raw is not None
            on_loop = no_wait.active
            wanted = 0 if on_loop else BUSY_TIMEOUT_MS
            if fairy.info.get(_BUSY_KEY) != wanted:
                raw.execute(f"PRAGMA busy_timeout={wanted}")
                fairy.info[_BUSY_KEY] = wanted
            if not on_loop:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                return
            try:
                raw.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as error:
                raise Busy from error  # another process writes: go the thread's way

        return engine
    engine = sa.create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        connect_args={"connect_timeout": 5} if url.startswith("postgresql") else {},
        hide_parameters=True,
        json_serializer=json_text.dumps,
    )
    ping_when_idle(engine, ping_idle_s)
    return engine


class _NoWait(threading.local):
    active = False  # this thread's next BEGIN must not wait for the write lock


no_wait = _NoWait()  # set by the store around a transaction it runs on the event loop


class Busy(Exception):
    """The SQLite write lock is held by another process: not taken, nothing done."""
