"""A throwaway database (the lab's): paymend's own schema, repositories and `Store` gateway,
minus what a run that is deleted at its end never needs.

The engine writes through `store.run(fn)` exactly as in a server: one transaction per
call, committed when `fn` returns, rolled back when it raises, foreign keys and every
constraint and partial index of the migrated schema enforced by SQLite. What differs is
below it: the schema is migrated into a file in the run's temporary folder and copied
into an in-memory database (nothing to wait for on the disk, nothing left behind), and
one connection is held for the whole run: the lab is one task on one loop, so there is
never a second writer to lock out with `BEGIN IMMEDIATE`, nor a pool to check
connections out of. The memory is SQLite's memdb VFS, whose commits cost the same at any
size; its ceiling is 1 GiB, so a run that could come near it (lab/memory.py) writes the
migrated file itself instead, without waiting for the disk.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.pool import StaticPool

from paymend.store import json_text
from paymend.store.database import Store
from paymend.store.migrate import upgrade

# SQLite's memdb VFS: the database file is a buffer in this connection's memory. Not
# ":memory:", whose pages all live in the page cache, which every commit walks: a run's
# commits grew with its database (0.46 ms each on average over the primary outage's
# 47,711 payments, under cProfile). Without a leading "/" the name is private to the
# one connection that opens it.
MEMDB = "file:paymend-lab?vfs=memdb"
MEMDB_MAX_BYTES = 1 << 30  # SQLite's ceiling for a memdb database (a build-time default)
CACHED_STATEMENTS = 512  # the engine and worker use about 270 statements; sqlite3 keeps 128


class ThrowawayStore(Store):
    """A SQLite store holding the schema migrated at `template`, inline on the event loop:
    in memory, or for a run too big for memdb's ceiling (`on_file`), the template file
    itself, written without waiting for the disk (it is deleted with its folder)."""

    def __init__(self, template: Path, *, on_file: bool = False) -> None:
        upgrade(f"sqlite:///{template}")
        super().__init__(f"sqlite:///{template}", inline=True)
        self.engine.dispose()  # the server's engine, replaced by the one connection below

        def connect() -> sqlite3.Connection:
            if on_file:
                db = sqlite3.connect(
                    template, check_same_thread=False, cached_statements=CACHED_STATEMENTS
                )
                db.execute("PRAGMA journal_mode=MEMORY")  # rollbacks still roll back
                db.execute("PRAGMA synchronous=OFF")
            else:
                db = sqlite3.connect(
                    MEMDB, uri=True, check_same_thread=False, cached_statements=CACHED_STATEMENTS
                )
                migrated = sqlite3.connect(template)
                try:
                    migrated.backup(db)
                finally:
                    migrated.close()
            db.execute("PRAGMA foreign_keys=ON")
            return db

        self.engine = sa.create_engine(
            "sqlite://",
            creator=connect,
            poolclass=StaticPool,
            hide_parameters=True,
            json_serializer=json_text.dumps,  # as the server's engine writes JSON
        )
        # its one connection is held from transaction to transaction by `Store.run_sync`
