"""PostgreSQL: a pooled connection is pinged before it is lent only when it sat idle.

A connection the server closed while it sat idle (a restart, a failover, an idle
timeout) is found by the ping and replaced: the caller never sees it. One closed within
the idle allowance fails the next transaction with `database_unavailable`, nothing
changed, and the pool replaces its connections for the transaction after."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from paymend.domain.errors import Unavailable
from paymend.store.database import Connection, Store

pytestmark = pytest.mark.postgres


def backend(conn: Connection) -> int:
    return int(conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())


def close_on_the_server(url: str, pid: int) -> None:
    """What a server restart does to one connection: the server ends it."""
    admin = sa.create_engine(url)
    try:
        with admin.begin() as conn:
            ended = conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            assert ended.scalar_one() is True
    finally:
        admin.dispose()


def test_an_idle_connection_the_server_closed_is_replaced_unseen(postgres_url: str) -> None:
    store = Store(postgres_url, inline=True, pool_size=1, ping_idle_s=0.0)
    try:

        async def scenario() -> None:
            first = await store.run(backend)
            close_on_the_server(postgres_url, first)
            second = await store.run(backend)  # the ping found it closed
            assert second != first

        asyncio.run(scenario())
    finally:
        store.close()


def test_a_connection_closed_within_the_allowance_fails_one_transaction(
    postgres_url: str,
) -> None:
    store = Store(postgres_url, inline=True, pool_size=1, ping_idle_s=3600.0)
    try:

        async def scenario() -> None:
            first = await store.run(backend)
            assert await store.run(backend) == first  # lent again as it was
            close_on_the_server(postgres_url, first)
            with pytest.raises(Unavailable) as failed:
                await store.run(backend)
            assert failed.value.code == "database_unavailable"
            assert await store.run(backend) != first  # the pool replaced it

        asyncio.run(scenario())
    finally:
        store.close()


def test_each_store_thread_keeps_its_connection_and_close_ends_them(postgres_url: str) -> None:
    """On PostgreSQL each of the store's threads holds one connection from transaction
    to transaction (checked out of the pool once, not at every transaction), and
    closing the store ends every one of them on the server."""
    store = Store(postgres_url, pool_size=2)
    checkouts: list[int] = []
    sa.event.listen(store.engine, "checkout", lambda *_: checkouts.append(1))

    async def scenario() -> set[int]:
        seen: set[int] = set()
        for _ in range(5):
            seen.update(await asyncio.gather(*(store.run(backend) for _ in range(8))))
        return seen

    try:
        pids = asyncio.run(scenario())
    finally:
        store.close()
    assert 1 <= len(pids) <= 2 and 1 <= len(checkouts) <= 2  # two threads, 40 transactions
    admin = sa.create_engine(postgres_url)
    try:
        with admin.connect() as conn:
            left = conn.execute(
                sa.text("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(:pids)"),
                {"pids": sorted(pids)},
            ).scalar_one()
    finally:
        admin.dispose()
    assert left == 0
