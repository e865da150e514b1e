"""SQLite's write-ahead log copied back into the database file, and started over, off
the event loop.

SQLite copies the log back (a checkpoint) in the commit that takes it past 1,000 pages:
5 to 14 ms with the disk's syncs, on the event loop, for every request in flight, about
one commit in eight at full load. The serving store's thread does the copying instead,
at most every CHECKPOINT_EVERY_S after a commit on the loop (`Checkpoints.soon`, a
PASSIVE checkpoint: it never waits for the writer nor stops it).

Under steady load commits land while it syncs, so the log is never copied to its very
end and SQLite cannot start it over: it would grow without end. SQLite's own answer, a
checkpoint in the commit that takes the log past BACKSTOP_PAGES, copies what the
thread has not yet (up to CHECKPOINT_EVERY_S of commits) and syncs the disk twice, on
the loop: 25-50 ms in which no request moves, every 10,000 pages (about every 0.7 s at
500 payments a second: about 3 % of the requests waited for it, the whole p99). So once
the log passes RESTART_PAGES the store starts it over itself (`start_over`, which
`Store` calls after a commit on the loop): a copy on the thread while commits go on,
then one on the loop's own connection between two of its transactions, which copies
the little that came in meanwhile and, with no commit while it runs, reaches the log's
end; SQLite starts the log over at the next commit.
The loop waits for that second copy alone, its two syncs (2-10 ms here), not for the
whole log's. BACKSTOP_PAGES stays as SQLite's own limit, for a log that cannot start
over (a reader in another process still on it).
https://www.sqlite.org/wal.html#automatic_checkpoint,
https://www.sqlite.org/wal.html#avoiding_excessively_large_wal_files
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from sqlalchemy.engine import Engine

_log = logging.getLogger("paymend.store")  # the store imports no observability set-up
CHECKPOINT_EVERY_S = 0.25
BACKSTOP_PAGES = 10_000
RESTART_PAGES = 5_000


class Checkpoints:
    """The checkpoints of a store whose transactions commit on the event loop, run on
    the store's thread on a pooled connection of their own."""

    def __init__(
        self, engine: Engine, thread: ThreadPoolExecutor, monotonic: Callable[[], float]
    ) -> None:
        self._engine = engine
        self._thread = thread
        self._monotonic = monotonic
        self._running: Future[None] | None = None
        self._started_at = -math.inf
        self._conn: Any = None  # the pool's DB-API connection, once one is wanted
        self.pages = 0  # the log's length at the last copy, in pages
        # the log is started over once it reaches this length; moved on if an attempt
        # left it as long (it could not start over), back when it did start over
        self._restart_at = RESTART_PAGES

    @staticmethod
    def hand_over(loop_connection: Any) -> None:
        """The loop's DB-API connection checkpoints only past BACKSTOP_PAGES from now on."""
        loop_connection.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")

    def soon(self) -> None:
        """After a commit on the loop: the log copied back on the store's thread, unless
        a copy runs or one started less than CHECKPOINT_EVERY_S ago."""
        if self._running is not None and not self._running.done():
            return
        now = self._monotonic()
        if now - self._started_at < CHECKPOINT_EVERY_S:
            return
        self._start()

    def wants_restart(self) -> bool:
        """Whether the log, as long as the last copy found it, should start over."""
        return self.pages >= self._restart_at

    async def start_over(
        self, turn: asyncio.Lock, on_loop: Callable[[Callable[[Any], None]], None]
    ) -> None:
        """The log started over without SQLite's checkpoint in a commit (see the module):
        copied back on the thread while commits go on, after the copy under way; then,
        holding the store's `turn`, the little that came in meanwhile on the loop's own
        connection (`on_loop` hands it to `_copy_rest`), so that nothing is added to the
        log while it is copied to its end and the next commit starts it over. A copy
        that fails is logged; SQLite's own checkpoint past BACKSTOP_PAGES remains."""
        with contextlib.suppress(Exception):
            if self._running is not None and not self._running.done():
                await asyncio.wrap_future(self._running)
            started = self._start()
            if started is not None:
                await asyncio.wrap_future(started)
            async with turn:
                on_loop(self._copy_rest)

    async def done(self) -> None:
        """Wait for the copy under way, if any (for tests: nothing else waits for it)."""
        if self._running is not None:
            await asyncio.wrap_future(self._running)

    def _start(self) -> Future[None] | None:
        """A copy submitted to the store's thread; None when the store is closing
        (SQLite checkpoints as it closes)."""
        self._started_at = self._monotonic()
        try:
            self._running = self._thread.submit(self._copy_back)
        except RuntimeError:
            return None
        return self._running

    def _copy_rest(self, loop_connection: Any) -> None:
        """The copy that starts the log over, on the loop's own DB-API connection between
        two of its transactions: after the thread's there is little left, and with no
        commit while it runs it reaches the log's end. If it cannot (a reader in another
        process is still on the log), the next try waits until the log has grown by
        another RESTART_PAGES, not for every copy."""
        try:
            pages = _passive(loop_connection)
        except Exception as error:  # noqa: BLE001 - SQLite's own checkpoint remains
            _log.warning("sqlite_checkpoint_failed: %s", type(error).__name__)
            return
        self.pages = pages
        self._restart_at = pages + RESTART_PAGES

    def _copy_back(self) -> None:
        """A PASSIVE checkpoint on a connection of its own, which is never in a
        transaction: it copies what the readers allow and waits for nobody. One that
        fails is logged (before its future ends) and tried again after a later commit,
        on a fresh connection; the loop's connection keeps the log under BACKSTOP_PAGES
        whatever happens here."""
        conn = self._conn
        if conn is None:
            conn = self._conn = self._engine.raw_connection()
        try:
            pages = _passive(conn.driver_connection)
        except Exception as error:
            _log.warning("sqlite_checkpoint_failed: %s", type(error).__name__)
            self._conn = None
            conn.invalidate()  # a connection gone bad is not reused
            raise
        if pages < self.pages:  # it started over
            self._restart_at = RESTART_PAGES
        self.pages = pages

    def close(self) -> None:
        """After the store's thread has stopped: the connection back to the pool."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _passive(connection: Any) -> int:
    """A PASSIVE checkpoint on a DB-API connection; the log's length after it, in pages."""
    cursor = connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
    try:
        _, pages, _ = cursor.fetchone()  # (busy, the log's pages, those copied)
    finally:
        cursor.close()
    return int(pages)
