"""An asyncio event loop whose clock jumps to the next timer when nothing is ready.

Time advances only when every task is waiting, so timeouts, backoffs and simulated
latencies cost no real time and the same program gives the same timings every run.
Everything run on it must stay on the loop: blocking work in threads would be
overtaken by the jumping clock (the store runs inline there).
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class _JumpingSelector(selectors.DefaultSelector):
    def __init__(self, loop: VirtualTimeLoop) -> None:
        super().__init__()
        self._vloop = loop

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None:
            # nothing scheduled: only I/O or another thread can wake us, wait for real
            return super().select(None)
        events = super().select(0)
        if not events and timeout > 0:
            self._vloop.advance(timeout)
        return events


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self._virtual_now = 0.0
        super().__init__(_JumpingSelector(self))

    def time(self) -> float:
        return self._virtual_now

    def advance(self, seconds: float) -> None:
        self._virtual_now += seconds


def run_virtual(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` to completion on a fresh virtual-time loop."""
    loop = VirtualTimeLoop()
    try:
        return loop.run_until_complete(coro)
    finally:
        # as asyncio.run does: what is still pending is cancelled and let finish, so no
        # coroutine is left suspended on a closed loop
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
