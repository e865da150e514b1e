"""SQLite's write-ahead log copied back into the database file off the event loop.

SQLite copies the log back (a checkpoint) in the commit that takes it past 1,000 pages:
5 to 14 ms with the disk's syncs, on the event loop, for every request in flight, about
one commit in eight at full load. The serving store's thread does the copying instead,
at most every CHECKPOINT_EVERY_S after a commit on the loop (`Checkpoints.soon`, a
PASSIVE checkpoint: it never waits for the writer nor stops it). Under steady load
commits land while it syncs, so the log is never copied to its very end and SQLite
cannot start it over; the loop's connection does that when the log passes
BACKSTOP_PAGES, with little left to copy but the same two syncs: about one commit in 75
at full load. (A larger backstop makes those rarer and the log longer, which every read
searches.) https://www.sqlite.org/wal.html#automatic_checkpoint
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from sqlalchemy.engine import Engine

_log = logging.getLogger("paymend.store")  # the store imports no observability set-up
CHECKPOINT_EVERY_S = 0.25
BACKSTOP_PAGES = 10_000


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
        self._started_at = now
        try:
            self._running = self._thread.submit(self._copy_back)
        except RuntimeError:  # the store is closing: SQLite checkpoints as it closes
            return

    async def done(self) -> None:
        """Wait for the copy under way, if any (for tests: nothing else waits for it)."""
        if self._running is not None:
            await asyncio.wrap_future(self._running)

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
            conn.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)").close()
        except Exception as error:
            _log.warning("sqlite_checkpoint_failed: %s", type(error).__name__)
            self._conn = None
            conn.invalidate()  # a connection gone bad is not reused
            raise

    def close(self) -> None:
        """After the store's thread has stopped: the connection back to the pool."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
