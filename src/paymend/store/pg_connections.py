"""PostgreSQL's connections: pinged only after they sat idle, one held by each store thread.

A connection back from a transaction a moment ago was alive then; one that sat idle may
have been closed by a server restart, a failover or an idle timeout, and is pinged
before its next transaction (one round trip). The pool does this for the connections it
lends (`ping_when_idle`); each of the store's threads keeps one connection from
transaction to transaction and does the same for it (`ThreadConnections`).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.engine import Connection, Engine

__all__ = ["PING_IDLE_S", "ThreadConnections", "ping_when_idle"]

# a connection idle for longer than this is pinged before its next transaction
PING_IDLE_S = 1.0
_IDLE_KEY = "paymend_idle_since"  # when the connection went back to the pool


def answers(engine: Engine, dbapi_conn: Any) -> bool:
    """Whether the connection answers a ping; any failure means it does not."""
    try:
        return bool(engine.dialect.do_ping(dbapi_conn))
    except Exception:  # noqa: BLE001 - any failure means: not this one
        return False


def ping_when_idle(engine: Engine, idle_s: float) -> None:
    """Ping a pooled connection before lending it only when it sat idle for `idle_s`.

    SQLAlchemy's `pool_pre_ping` pings at every checkout: one more round trip per
    transaction, about a tenth of a payment's time on PostgreSQL. A failed ping discards
    the connection and the pool lends a fresh one (`DisconnectionError`,
    https://docs.sqlalchemy.org/en/20/core/pooling.html#disconnect-handling-pessimistic).
    A server that goes away within `idle_s` of a connection's last use fails that
    connection's next transaction, as it fails one in flight: SQLAlchemy then discards
    every connection of the pool older than the failure, and the caller is told
    `database_unavailable` with nothing changed."""

    @event.listens_for(engine, "checkin")
    def _on_checkin(dbapi_conn: Any, record: Any) -> None:
        record.info[_IDLE_KEY] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_conn: Any, record: Any, proxy: Any) -> None:
        since = record.info.get(_IDLE_KEY)
        if since is None or time.monotonic() - since < idle_s:
            return  # new, or back from a transaction a moment ago
        if not answers(engine, dbapi_conn):
            raise exc.DisconnectionError("a pooled connection did not answer")


class _Own(threading.local):
    """A thread's own connection and when its last transaction ended."""

    conn: Connection | None = None
    used = 0.0


class ThreadConnections:
    """Each thread's own connection, held from transaction to transaction as the SQLite
    store holds its one: checking one out of the pool and back cost 45-60 µs of CPU a
    transaction, about 5 % of a payment's instructions. One idle for `idle_s` is pinged
    first; one that went bad, or did not answer, goes back to the pool (which drops it)
    for a fresh one."""

    def __init__(self, engine: Engine, idle_s: float) -> None:
        self._engine = engine
        self._idle_s = idle_s
        self._own = _Own()
        self._all: list[Connection] = []  # every thread's, to close with the store
        self._lock = threading.Lock()

    def get(self) -> Connection:
        """This thread's connection, ready for its next transaction."""
        own = self._own
        conn = own.conn
        if conn is not None and not (conn.closed or conn.invalidated):
            if time.monotonic() - own.used < self._idle_s:
                return conn
            raw = conn.connection.dbapi_connection
            if raw is not None and answers(self._engine, raw):
                return conn
            conn.invalidate()
        if conn is not None:
            conn.close()
            with self._lock:
                self._all.remove(conn)
        conn = own.conn = self._engine.connect()
        with self._lock:
            self._all.append(conn)
        return conn

    def done(self) -> None:
        """This thread's transaction ended: its connection is known alive from now."""
        self._own.used = time.monotonic()

    def close(self) -> None:
        """Once the threads have stopped: every connection back to the pool."""
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
