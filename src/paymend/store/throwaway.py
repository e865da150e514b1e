"""A throwaway database (the lab's): paymend's own schema, repositories and `Store` gateway,
minus what a run that is deleted at its end never needs.

The engine writes through `store.run(fn)` exactly as in a server: one transaction per
call, committed when `fn` returns, rolled back when it raises, foreign keys and every
constraint and partial index of the migrated schema enforced by SQLite. What differs is
below it: the schema is migrated into a file in the run's temporary folder and copied
into an in-memory database (nothing to wait for on the disk, nothing left behind), and
one connection is held for the whole run: the lab is one task on one loop, so there is
never a second writer to lock out with `BEGIN IMMEDIATE`, nor a pool to check
connections out of.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.pool import StaticPool

from paymend.store.database import Store
from paymend.store.migrate import upgrade

T = TypeVar("T")


class ThrowawayStore(Store):
    """An in-memory SQLite store holding the schema migrated at `template`, inline on the
    event loop."""

    def __init__(self, template: Path) -> None:
        upgrade(f"sqlite:///{template}")
        super().__init__(f"sqlite:///{template}", inline=True)
        self.engine.dispose()  # the server's engine, replaced by the one connection below

        def in_memory() -> sqlite3.Connection:
            memory = sqlite3.connect(":memory:", check_same_thread=False)
            migrated = sqlite3.connect(template)
            try:
                migrated.backup(memory)
            finally:
                migrated.close()
            memory.execute("PRAGMA foreign_keys=ON")
            return memory

        self.engine = sa.create_engine(
            "sqlite://", creator=in_memory, poolclass=StaticPool, hide_parameters=True
        )
        self._conn: Connection | None = None

    def run_sync(self, fn: Callable[[Connection], T]) -> T:
        if self._conn is None:
            self._conn = self.engine.connect()
        with self._conn.begin():
            return fn(self._conn)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        super().close()
