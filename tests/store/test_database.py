"""The store's gateway on SQLite: transactions run on the event loop, those that reach
it in one turn of the loop under one commit, and one that would have to wait for
another process's write lock goes to the store's thread, so the loop never waits for
it."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from paymend.store import checkpoints as checkpoints_module
from paymend.store.checkpoints import CHECKPOINT_EVERY_S, Checkpoints
from paymend.store.database import Connection, Store
from paymend.store.engines import MMAP_BYTES, create_db_engine


def count(conn: Connection) -> int:
    return int(conn.execute(sa.text("SELECT count(*) FROM merchants")).scalar_one())


def add(conn: Connection, name: str = "x") -> None:
    conn.execute(
        sa.text(
            "INSERT INTO merchants (id, name, created_at, settings)"
            " VALUES (:id, :name, '2026-01-01 00:00:00.000000', '{}')"
        ),
        {"id": f"mer_{name}", "name": name},
    )


def names(conn: Connection) -> list[str]:
    return list(conn.execute(sa.text("SELECT name FROM merchants ORDER BY name")).scalars())


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


def _in_the_file_alone(db: Path, tmp: Path) -> list[str]:
    """The merchants the database file holds without its write-ahead log: what the
    checkpoints have copied back."""
    alone = tmp / "alone.db"
    shutil.copyfile(db, alone)
    with sqlite3.connect(alone) as conn:
        return [n for (n,) in conn.execute("SELECT name FROM merchants ORDER BY name")]


def _paced(sqlite_url: str) -> tuple[Store, list[float]]:
    """A store whose checkpoints read the time from `now[0]`, which the test moves."""
    now = [100.0]
    return Store(sqlite_url, monotonic=lambda: now[0]), now


def _checkpoints(store: Store) -> Checkpoints:
    assert store.checkpoints is not None  # a store on the loop copies its log back
    return store.checkpoints


async def _first_copied_back(store: Store) -> None:
    """The first commit, merchant "a", and its checkpoint, done."""
    await store.run(lambda conn: add(conn, "a"))
    await _checkpoints(store).done()


def _big(name: str) -> Callable[[Connection], None]:
    def write(conn: Connection) -> None:  # 6 MB: about 1,500 pages of log
        add(conn, name)
        conn.execute(sa.text("CREATE TABLE IF NOT EXISTS blobs (b BLOB)"))
        conn.execute(sa.text("INSERT INTO blobs VALUES (randomblob(6000000))"))

    return write


def test_the_log_is_copied_back_on_the_stores_thread_not_in_a_commit_on_the_loop(
    sqlite_url: str, tmp_path: Path
) -> None:
    db = Path(sqlite_url.removeprefix("sqlite:///"))
    store, now = _paced(sqlite_url)
    try:

        async def scenario() -> None:
            await _first_copied_back(store)
            assert _in_the_file_alone(db, tmp_path) == ["a"]
            # within CHECKPOINT_EVERY_S of that copy: the commits copy nothing back, and
            # the loop's connection does not either, however much they wrote
            await store.run(_big("b"))  # each past SQLite's own 1,000-page mark
            await store.run(_big("c"))
            await _checkpoints(store).done()
            assert _in_the_file_alone(db, tmp_path) == ["a"]
            now[0] += CHECKPOINT_EVERY_S
            await store.run(lambda conn: add(conn, "d"))  # the time has come: copied back
            await _checkpoints(store).done()
            assert _in_the_file_alone(db, tmp_path) == ["a", "b", "c", "d"]

        asyncio.run(scenario())
    finally:
        store.close()


def test_a_long_log_is_copied_to_its_end_between_two_transactions_and_starts_over(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkpoints_module, "RESTART_PAGES", 1_000)
    db = Path(sqlite_url.removeprefix("sqlite:///"))
    store, now = _paced(sqlite_url)
    checkpoints = _checkpoints(store)
    try:

        async def scenario() -> None:
            await _first_copied_back(store)
            now[0] += CHECKPOINT_EVERY_S
            await store.run(_big("b"))  # copied back on the thread
            await checkpoints.done()
            assert checkpoints.pages > 1_000
            # within CHECKPOINT_EVERY_S: the thread copies nothing, but the log is long,
            # so the store copies it to its end before its next transaction
            await store.run(lambda conn: add(conn, "c"))
            restarting = store._restarting
            assert restarting is not None
            await restarting
            assert _in_the_file_alone(db, tmp_path) == ["a", "b", "c"]
            # and the next commit starts the log over: the next copy finds it short
            await store.run(lambda conn: add(conn, "d"))
            now[0] += CHECKPOINT_EVERY_S
            await store.run(lambda conn: add(conn, "e"))
            await checkpoints.done()
            assert checkpoints.pages < 100
            assert _in_the_file_alone(db, tmp_path) == ["a", "b", "c", "d", "e"]

        asyncio.run(scenario())
    finally:
        store.close()


def test_a_log_that_cannot_start_over_is_not_copied_at_every_commit(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader in another connection still on the log's oldest pages: the copy cannot
    reach the end, and the store tries again only once the log has grown again."""
    monkeypatch.setattr(checkpoints_module, "RESTART_PAGES", 1_000)
    db = Path(sqlite_url.removeprefix("sqlite:///"))
    store, now = _paced(sqlite_url)
    checkpoints = _checkpoints(store)
    reader = sqlite3.connect(db, isolation_level=None)
    try:

        async def scenario() -> None:
            await _first_copied_back(store)
            reader.execute("BEGIN")
            reader.execute("SELECT count(*) FROM merchants").fetchone()  # holds its snapshot
            now[0] += CHECKPOINT_EVERY_S
            await store.run(_big("b"))
            await checkpoints.done()
            await store.run(lambda conn: add(conn, "c"))
            restarting = store._restarting
            assert restarting is not None
            await restarting
            stuck = checkpoints.pages
            assert stuck > 1_000  # the reader kept the log from starting over
            await store.run(lambda conn: add(conn, "d"))
            assert store._restarting is restarting  # not tried again at once
            now[0] += CHECKPOINT_EVERY_S
            reader.execute("COMMIT")
            await store.run(_big("e"))  # grown by another 1,000 pages: tried again
            await checkpoints.done()
            await store.run(lambda conn: add(conn, "f"))
            restarting = store._restarting
            assert restarting is not None
            await restarting
            await store.run(lambda conn: add(conn, "g"))  # starts the log over
            now[0] += CHECKPOINT_EVERY_S
            await store.run(lambda conn: add(conn, "h"))
            await checkpoints.done()
            assert checkpoints.pages < 100

        asyncio.run(scenario())
    finally:
        reader.close()
        store.close()


def test_a_checkpoint_that_fails_is_logged_and_the_next_one_starts_afresh(
    sqlite_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = Path(sqlite_url.removeprefix("sqlite:///"))
    store, now = _paced(sqlite_url)
    try:

        async def scenario() -> None:
            await _first_copied_back(store)
            _checkpoints(store)._conn.driver_connection.close()  # its connection went bad
            now[0] += CHECKPOINT_EVERY_S
            await store.run(lambda conn: add(conn, "b"))
            with pytest.raises(sqlite3.ProgrammingError):
                await _checkpoints(store).done()
            assert "sqlite_checkpoint_failed: ProgrammingError" in caplog.text
            assert _in_the_file_alone(db, tmp_path) == ["a"]
            now[0] += CHECKPOINT_EVERY_S
            await store.run(lambda conn: add(conn, "c"))  # a new connection copies it all
            await _checkpoints(store).done()
            assert _in_the_file_alone(db, tmp_path) == ["a", "b", "c"]

        asyncio.run(scenario())
    finally:
        store.close()


def test_a_commit_after_the_store_closed_its_thread_asks_for_no_checkpoint(
    sqlite_url: str,
) -> None:
    store, now = _paced(sqlite_url)
    try:

        async def scenario() -> None:
            await _first_copied_back(store)
            assert store._executor is not None
            store._executor.shutdown(wait=True)  # as `close` begins
            now[0] += CHECKPOINT_EVERY_S
            _checkpoints(store).soon()  # what a commit on the loop does next: no error

        asyncio.run(scenario())
    finally:
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


class Refused(Exception):
    pass


async def _in_one_turn(
    store: Store, middle: Callable[[Connection], None]
) -> tuple[object, object, object]:
    """Adds "a", `middle`, adds "c": three transactions in one turn of the loop; what
    each caller got (its result or its error)."""
    return await asyncio.gather(
        store.run(lambda conn: add(conn, "a")),
        store.run(middle),
        store.run(lambda conn: add(conn, "c")),
        return_exceptions=True,
    )


def test_transactions_of_one_turn_share_a_commit_and_fail_alone(sqlite_url: str) -> None:
    """Three transactions that reach the store in one turn of the loop commit once; the
    one that raises is rolled back alone and its caller gets its error."""
    store = Store(sqlite_url)
    commits: list[int] = []
    event.listen(store.engine, "commit", lambda conn: commits.append(1))

    def add_then_refuse(conn: Connection) -> None:
        add(conn, "b")
        raise Refused

    try:

        async def scenario() -> None:
            outcomes = await _in_one_turn(store, add_then_refuse)
            assert outcomes[0] is None and outcomes[2] is None
            assert isinstance(outcomes[1], Refused)
            assert len(commits) == 1
            assert await store.run(names) == ["a", "c"]
            assert len(commits) == 2

        asyncio.run(scenario())
    finally:
        store.close()


def test_a_transaction_whose_caller_is_gone_is_not_run(sqlite_url: str) -> None:
    store = Store(sqlite_url)
    try:

        async def scenario() -> None:
            kept = asyncio.create_task(store.run(lambda conn: add(conn, "kept")))
            gone = asyncio.create_task(store.run(lambda conn: add(conn, "gone")))
            await asyncio.sleep(0)  # both wait for the turn's commit
            gone.cancel()
            await kept
            with pytest.raises(asyncio.CancelledError):
                await gone
            assert await store.run(names) == ["kept"]

        asyncio.run(scenario())
    finally:
        store.close()


def test_a_transaction_sqlite_rolled_back_whole_tells_every_caller_its_reason(
    sqlite_url: str,
) -> None:
    """SQLite may end the whole transaction on an error of its own (a full disk, an I/O
    error), savepoints and all. Every caller of the turn hears of that error, not of the
    savepoint it took along, and nothing of the turn is kept."""
    store = Store(sqlite_url)

    class DiskFull(Exception):
        pass

    def fails_whole(conn: Connection) -> None:
        add(conn, "b")
        conn.exec_driver_sql("ROLLBACK")  # as SQLite does itself on SQLITE_FULL
        raise DiskFull("database or disk is full")

    try:

        async def scenario() -> None:
            outcomes = await _in_one_turn(store, fails_whole)
            assert [type(o) for o in outcomes] == [DiskFull] * 3, outcomes
            assert await store.run(names) == []

        asyncio.run(scenario())
    finally:
        store.close()


def test_a_failed_savepoint_statement_is_raised_as_sqlalchemys(
    sqlite_url: str,
) -> None:
    """A transaction that ends the shared transaction itself (here with its own COMMIT,
    which keeps what the turn wrote so far) leaves its savepoint gone: the store's
    RELEASE fails in the driver. Every caller of the turn gets SQLAlchemy's error, as
    from any other statement, not the driver's."""
    store = Store(sqlite_url)

    def end_it(conn: Connection) -> None:
        add(conn, "b")
        conn.exec_driver_sql("COMMIT")  # the turn's transaction, savepoints and all

    try:

        async def scenario() -> None:
            outcomes = await asyncio.gather(
                store.run(lambda conn: add(conn, "a")),
                store.run(end_it),
                return_exceptions=True,
            )
            for outcome in outcomes:
                assert isinstance(outcome, sa.exc.OperationalError), outcome
                assert "paymend_one" in str(outcome)
            assert await store.run(names) == ["a", "b"]  # the COMMIT's doing

        asyncio.run(scenario())
    finally:
        store.close()


def test_none_and_booleans_bind_as_sqlite_binds_them_unadapted(tmp_path: Path) -> None:
    plain = sqlite3.connect(":memory:")  # before any adapter of the store's
    asked = "SELECT ?, typeof(?), ?, typeof(?), ?, typeof(?)"
    values = (None, None, True, True, False, False)
    expected = plain.execute(asked, values).fetchone()
    assert expected == (None, "null", 1, "integer", 0, "integer")
    engine = create_db_engine(f"sqlite:///{tmp_path / 'bind.db'}")
    try:
        with engine.connect() as conn:
            got = conn.exec_driver_sql(asked, values).fetchone()
            assert got is not None and tuple(got) == expected
            insert = "INSERT INTO t VALUES (?, ?)"
            conn.exec_driver_sql("CREATE TABLE t (a, b)")
            conn.exec_driver_sql(insert, (None, True))
            rows = conn.exec_driver_sql("SELECT a IS NULL, b FROM t").fetchall()
            assert [tuple(r) for r in rows] == [(1, 1)]
        # the adapters are in place for every connection of the process
        assert sqlite3.adapters[(type(None), sqlite3.PrepareProtocol)](None) is None
        assert sqlite3.adapters[(bool, sqlite3.PrepareProtocol)](True) == 1
    finally:
        engine.dispose()
        plain.close()
