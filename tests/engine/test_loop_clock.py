"""LoopClock reads the running loop's time: on a virtual-time loop every reading is
reproducible, and the clock keeps up when the loop jumps."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from paymend.engine.clock import LoopClock
from paymend.engine.virtual_time import run_virtual


def test_now_follows_the_loop_through_every_jump() -> None:
    epoch = datetime(2026, 3, 1, tzinfo=UTC)
    clock = LoopClock(epoch)
    seen: list[datetime] = []

    async def scenario() -> None:
        seen.append(clock.now())
        seen.append(clock.now())  # the loop has not moved: the same instant
        for step in (0.25, 3600.0, 0.000001):
            await asyncio.sleep(step)
            seen.append(clock.now())

    run_virtual(scenario())
    elapsed = [0.0, 0.0, 0.25, 3600.25, 3600.250001]
    assert seen == [epoch + timedelta(seconds=s) for s in elapsed]
    assert all(t.tzinfo is UTC for t in seen)
