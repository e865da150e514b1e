"""Re-running a transaction that lost an optimistic-locking race."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from paymend.domain.errors import StaleWrite
from paymend.store.database import Connection, Store

T = TypeVar("T")


async def retry_stale(store: Store, fn: Callable[[Connection], T], tries: int = 5) -> T:
    """Run `fn` again (re-reading what it needs) when a concurrent writer got to the
    payment first."""
    for _ in range(tries - 1):
        try:
            return await store.run(fn)
        except StaleWrite:
            continue
    return await store.run(fn)
