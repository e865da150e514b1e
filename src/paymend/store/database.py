"""The one gateway to the database: `await store.run(fn)` (its engine: store/engines.py).

`fn` receives a Connection inside a transaction that commits when it returns and rolls
back when it raises, so a state change and its outbox events land together or not at
all. Outside store/ a Connection is only handed on to repositories; its type is named
here so that the engine never imports SQLAlchemy. On SQLite the process keeps one
writer connection (WAL, `BEGIN IMMEDIATE`) and runs store work on one thread; on
PostgreSQL a small pool and as many threads (store/handoff.py), each holding a
connection of its own (store/pg_connections.py). In the lab the work runs inline on the
event loop, which keeps virtual time honest.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.engine import Connection

from paymend.domain.errors import Unavailable
from paymend.store.checkpoints import Checkpoints
from paymend.store.driver import driver_error
from paymend.store.engines import Busy, create_db_engine, is_sqlite, no_wait
from paymend.store.handoff import Handoff
from paymend.store.pg_connections import PING_IDLE_S, ThreadConnections

__all__ = ["Connection", "Store"]

T = TypeVar("T")


class Store:
    """The database gateway. Every read and write in paymend goes through `run`.

    On SQLite, where a transaction is a few hundred microseconds of work with the write
    lock this process holds alone, `run` runs it on the event loop: a hand-off to a
    thread and back would cost more than the work. The transactions that reach the store
    in one turn of the loop run one after the other under one commit, each in a
    savepoint of its own (one that raises is rolled back alone), and each caller hears
    back once that commit is done: a commit, which writes the log's frames, was most of
    a small transaction's cost, and the same index pages are written once for all.
    Only when another process holds the write lock (a CLI command, a migration) would it
    wait, and the loop must never wait: then the transactions go to the store's thread,
    which waits up to the busy timeout. The store's thread also copies the write-ahead
    log back into the database file (`checkpoints`), which SQLite would otherwise do in
    a commit on the loop, waiting for the disk. On PostgreSQL every transaction goes to
    the store's threads, each with a connection of its own held from transaction to
    transaction.
    """

    def __init__(
        self,
        url: str,
        *,
        inline: bool = False,
        pool_size: int = 8,
        ping_idle_s: float = PING_IDLE_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.engine = create_db_engine(url, pool_size=pool_size, ping_idle_s=ping_idle_s)
        self.inline = inline
        sqlite = is_sqlite(url)
        # SQLite: one thread, for the transactions the loop must not wait for and the
        # checkpoints; PostgreSQL: every transaction, on as many threads as connections
        self._executor = None if inline or not sqlite else ThreadPoolExecutor(1, "paymend-store")
        self._handoff = None if inline or sqlite else Handoff(pool_size, "paymend-store")
        self._turn: asyncio.Lock | None = None  # SQLite: one transaction at a time
        # SQLite: the transactions waiting for this turn of the loop's commit (`run`)
        self._waiting: list[tuple[Callable[[Connection], Any], asyncio.Future[Any]]] = []
        self._flushes: set[asyncio.Task[None]] = set()  # held: the loop keeps weak ones
        # SQLite: the write-ahead log started over between two transactions, the last try
        self._restarting: asyncio.Task[None] | None = None
        # SQLite: one connection held from transaction to transaction. Checking it out of
        # the pool and back for each one cost more than a transaction's BEGIN (a tenth of
        # a payment's CPU); the lock keeps two threads of an inline store off it at once
        self._held: Connection | None = None
        self._held_lock = threading.Lock() if sqlite else None
        # PostgreSQL: each thread's own connection, held as SQLite's one is
        self._own = None if sqlite else ThreadConnections(self.engine, ping_idle_s)
        # SQLite on the loop: the log copied back on the store's thread
        self.checkpoints = (
            Checkpoints(self.engine, self._executor, monotonic)
            if self._executor is not None
            else None
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def run(self, fn: Callable[[Connection], T]) -> T:
        """Run `fn(conn)` in one transaction: inline in the lab, on the event loop or the
        store's thread on SQLite (see the class), on a store thread on PostgreSQL."""
        if self._handoff is not None:
            return await self._handoff.run(self.run_sync, fn)
        if self._executor is None:
            return self.run_sync(fn)
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Any] = loop.create_future()
        self._waiting.append((fn, waiter))
        if len(self._waiting) == 1:  # the first of this turn of the loop: one commit for all
            flush = loop.create_task(self._flush(loop))
            self._flushes.add(flush)
            flush.add_done_callback(self._flushes.discard)
        return cast(T, await waiter)

    async def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        """Run the transactions that reached the store in one turn of the event loop (a
        task's first step runs in the next turn, when they all have) in one SQLite
        transaction, each in a savepoint of its own (`_together`), and answer each when
        the one commit is done."""
        if self._turn is None:
            self._turn = asyncio.Lock()
        async with self._turn:  # the one connection is never wanted by both paths
            batch, self._waiting = self._waiting, []
            batch = [(fn, w) for fn, w in batch if not w.cancelled()]  # its caller is gone
            try:
                await self._run_batch(loop, batch)
            except BaseException as error:
                for _, waiter in batch:
                    if not waiter.done():
                        waiter.set_exception(error)
                raise

    async def _run_batch(
        self, loop: asyncio.AbstractEventLoop, batch: list[tuple[Callable[[Connection], Any], Any]]
    ) -> None:
        if not batch:
            return
        no_wait.active = True
        try:
            outcomes = self.run_sync(lambda conn: _together(conn, [fn for fn, _ in batch]))
        except Busy:
            outcomes = None
        except Exception as error:  # noqa: BLE001 - the commit failed: nothing was kept
            outcomes = [(False, error)] * len(batch)
        finally:
            no_wait.active = False
        if outcomes is None:  # another process writes: each goes the thread's way
            for fn, waiter in batch:
                try:
                    result = await loop.run_in_executor(self._executor, self.run_sync, fn)
                except Exception as error:  # noqa: BLE001 - handed to its caller
                    _answer(waiter, (False, error))
                else:
                    _answer(waiter, (True, result))
            return
        for (_, waiter), outcome in zip(batch, outcomes, strict=True):
            _answer(waiter, outcome)
        checkpoints = self.checkpoints
        if checkpoints is not None:
            checkpoints.soon()
            restarting = self._restarting
            if checkpoints.wants_restart() and (restarting is None or restarting.done()):
                assert self._turn is not None  # this flush holds it
                self._restarting = loop.create_task(
                    checkpoints.start_over(self._turn, self._on_held)
                )

    def _on_held(self, fn: Callable[[Any], None]) -> None:
        """`fn` on the held connection's DB-API connection, if it is still good."""
        assert self._held_lock is not None
        with self._held_lock:
            conn = self._held
            if conn is not None and not conn.closed and not conn.invalidated:
                fn(conn.connection.dbapi_connection)

    def run_sync(self, fn: Callable[[Connection], T]) -> T:
        try:
            if self._held_lock is not None:
                with self._held_lock:
                    conn = self._held
                    if conn is None or conn.closed or conn.invalidated:
                        if conn is not None:
                            conn.close()  # its DB-API connection went bad: back to the pool
                        conn = self._held = self.engine.connect()
                        if self.checkpoints is not None:
                            self.checkpoints.hand_over(conn.connection.dbapi_connection)
                    with conn.begin():
                        return fn(conn)
            own = self._own
            assert own is not None
            conn = own.get()
            with conn.begin():
                result = fn(conn)
            own.done()
            return result
        except (exc.OperationalError, exc.InterfaceError, exc.TimeoutError) as error:
            mapped = _unavailable(error)
            if mapped is None:
                raise
            raise mapped from error

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        if self._handoff is not None:
            self._handoff.shutdown()
        if self._own is not None:
            self._own.close()
        if self.checkpoints is not None:
            self.checkpoints.close()
        if self._held is not None:
            self._held.close()
            self._held = None
        self.engine.dispose()


def _unavailable(error: BaseException) -> Unavailable | None:
    """The database error as the API tells it (nothing was changed), or None."""
    if isinstance(error, exc.TimeoutError):
        found = Unavailable("database_busy", "the database is busy; nothing was changed, try again")
    elif isinstance(error, exc.OperationalError | exc.InterfaceError) and _is_unreachable(error):
        found = Unavailable(
            "database_unavailable",
            "the database cannot be reached; nothing was changed, try again",
        )
    else:
        return None
    found.__cause__ = error
    return found


def _answer(waiter: asyncio.Future[Any], outcome: tuple[bool, Any]) -> None:
    if waiter.done():  # its caller was cancelled meanwhile
        return
    ok, value = outcome
    if ok:
        waiter.set_result(value)
    else:
        waiter.set_exception(_unavailable(value) or value)


def _together(conn: Connection, fns: list[Callable[[Connection], Any]]) -> list[tuple[bool, Any]]:
    """Each of `fns` in a savepoint of its own, in order, in the caller's transaction:
    (True, its result) or (False, what it raised, its writes rolled back). One commit
    for a turn's transactions instead of one each: a commit writes the write-ahead log's
    frames and its header, most of a small transaction's cost. Each caller is answered
    only after that commit, so a write still lands before anything that follows it."""
    if len(fns) == 1:  # alone: its own transaction, as ever
        return [(True, fns[0](conn))]
    raw = conn.connection.dbapi_connection
    assert raw is not None
    outcomes: list[tuple[bool, Any]] = []
    for fn in fns:
        _savepoint(conn, raw, "SAVEPOINT paymend_one")
        try:
            outcome: tuple[bool, Any] = (True, fn(conn))
        except Exception as error:  # noqa: BLE001 - handed to its own caller; the others go on
            try:
                _savepoint(conn, raw, "ROLLBACK TO paymend_one")
            except exc.StatementError:
                if raw.in_transaction:
                    raise
                # SQLite ended the whole transaction on its own (a full disk, an I/O
                # error): nothing of the turn is kept, and the reason is this error,
                # not the savepoint that went with the transaction
                raise error from None
            outcome = (False, error)
        _savepoint(conn, raw, "RELEASE paymend_one")
        outcomes.append(outcome)
    return outcomes


def _savepoint(conn: Connection, raw: Any, sql: str) -> None:
    """One of `_together`'s statements on the driver's connection; its error raised as
    SQLAlchemy's, as every other statement's, so that `run_sync` can tell it."""
    try:
        raw.execute(sql)
    except conn.dialect.loaded_dbapi.Error as error:
        raise driver_error(conn, sql, error) from error


def ping(conn: Connection) -> None:
    """The cheapest round trip: a readiness probe's proof that the database answers."""
    conn.execute(sa.text("SELECT 1")).scalar()


def _is_unreachable(error: exc.DBAPIError) -> bool:
    if error.connection_invalidated:
        return True
    text = str(error.orig).lower()
    markers = (
        "connection",
        "could not connect",
        "server closed",
        "unable to open database",
        "database is locked",
        "disk i/o error",
        "terminating",
        "timeout",
    )
    return any(m in text for m in markers)
