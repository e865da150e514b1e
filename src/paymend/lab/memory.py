"""What a lab run keeps in memory, and for how long: its database in memory unless the run
could outgrow memdb's ceiling, each checkout only while it is in flight, and the cyclic
collector kept out of the way of what lives for the whole run."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Coroutine, Iterator
from typing import Any

from paymend.engine.collector import GC_THRESHOLD
from paymend.lab.scenario import Scenario
from paymend.store.throwaway import MEMDB_MAX_BYTES

BYTES_PER_PAYMENT = 5_000  # of the run's database, with its attempts, events and jobs


def outgrows_memory(scenario: Scenario) -> bool:
    """Would the run's database come near memdb's ceiling (store/throwaway.py)? A
    payment takes about 4 kB of it (the primary outage's 47,711, some 200 MB)."""
    return scenario.rate * scenario.duration * BYTES_PER_PAYMENT > MEMDB_MAX_BYTES / 2


@contextlib.contextmanager
def collector_spared() -> Iterator[None]:
    """The run's objects out of the cyclic collector's way: young collections rarer
    (`GC_THRESHOLD`), what set-up built frozen (as `paymend serve` freezes after
    start-up), and both undone when the run ends, however it ends."""
    before = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLD)
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


class Checkouts:
    """The checkouts in flight. A finished one is let go at once: a run of 48,000
    payments kept every task (and what it held) alive until the end, for the collector
    to walk at every full collection."""

    def __init__(self) -> None:
        self._flying: set[asyncio.Task[None]] = set()
        self._failed: list[BaseException] = []

    def start(self, pay: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(pay)
        self._flying.add(task)
        task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        self._flying.discard(task)
        error = None if task.cancelled() else task.exception()
        if error is not None:
            self._failed.append(error)

    async def join(self) -> None:
        """Wait for every checkout; raise the first one's error, as `gather` did."""
        while self._flying:
            await asyncio.wait(list(self._flying))
        if self._failed:
            raise self._failed[0]
