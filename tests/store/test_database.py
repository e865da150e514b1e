"""The store's gateway on SQLite: transactions run on the event loop, and one that
would have to wait for another process's write lock goes to the store's thread, so
the loop never waits for it."""

from __future__ import annotations

import asyncio
import sqlite3

import sqlalchemy as sa

from paymend.store.database import MMAP_BYTES, Connection, Store


def count(conn: Connection) -> int:
    return int(conn.execute(sa.text("SELECT count(*) FROM merchants")).scalar_one())


def add(conn: Connection) -> None:
    conn.execute(
        sa.text(
            "INSERT INTO merchants (id, name, created_at, settings)"
            " VALUES ('mer_x', 'x', '2026-01-01 00:00:00.000000', '{}')"
        )
    )


def test_a_transaction_runs_on_the_loop_while_nobody_else_writes(sqlite_url: str) -> None:
    store = Store(sqlite_url)
    try:

        async def scenario() -> None:
            await store.run(add)
            assert await store.run(count) == 1

        asyncio.run(scenario())
    finally:
        store.close()


def test_another_process_holding_the_lock_never_stalls_the_loop(sqlite_url: str) -> None:
    store = Store(sqlite_url)
    other = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
    try:

        async def scenario() -> None:
            assert await store.run(count) == 0  # the store is up and connected
            other.execute("BEGIN IMMEDIATE")  # another process writes, and takes its time
            waiting = asyncio.create_task(store.run(add))
            for _ in range(20):  # let it try: it must hand the work to the thread
                await asyncio.sleep(0)
            assert not waiting.done()  # it waits for the lock in the thread...
            other.execute("COMMIT")  # ...while the loop runs on (this line ran)
            await waiting
            assert await store.run(count) == 1

        asyncio.run(scenario())
    finally:
        other.close()
        store.close()


def test_every_sqlite_connection_reads_the_file_through_a_memory_map(sqlite_url: str) -> None:
    """The store's SQLite connections map the database file (MMAP_BYTES): a page not in
    the connection's cache is read from the OS page cache without a system call."""
    store = Store(sqlite_url, inline=True)
    try:
        mapped = store.run_sync(lambda conn: conn.exec_driver_sql("PRAGMA mmap_size").scalar())
        assert mapped == MMAP_BYTES
    finally:
        store.close()
