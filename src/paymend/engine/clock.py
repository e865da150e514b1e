"""Clocks: the real one for servers, and one that follows the event loop's (virtual) time."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta


class SystemClock:
    """Wall-clock time for `now`, the loop's monotonic time for waits."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def epoch_ms(self) -> int:
        """Milliseconds since 1970 on the wall clock, read without building a datetime:
        what an id's time part needs, five times a payment (engine/ids.py)."""
        return time.time_ns() // 1_000_000

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class LoopClock:
    """Time read from the running event loop; `now()` starts at `epoch` on first use.

    On a virtual-time loop (`engine.virtual_time`) this clock jumps with the loop, so a
    one-hour outage replays in moments and every timestamp is reproducible.
    """

    def __init__(self, epoch: datetime | None = None) -> None:
        self._epoch = epoch or datetime(2026, 1, 1, tzinfo=UTC)
        self._origin: float | None = None
        # the last reading and its datetime: a virtual loop's time stands still between
        # jumps while a whole payment asks it, so most readings build no datetime
        self._then = (float("nan"), self._epoch)

    def _loop_time(self) -> float:
        t = asyncio.get_running_loop().time()
        if self._origin is None:
            self._origin = t
        return t - self._origin

    def now(self) -> datetime:
        t = self._loop_time()
        at, then = self._then
        if t != at:
            then = self._epoch + timedelta(seconds=t)
            self._then = (t, then)
        return then

    def monotonic(self) -> float:
        return asyncio.get_running_loop().time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))
