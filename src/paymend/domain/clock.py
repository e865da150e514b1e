"""The Clock interface. Everything that waits or stamps time receives one.

Implementations live in `engine/clock.py`; the domain only names the shape so that
providers, health windows and the engine can all be driven by a virtual clock in the lab.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back; for latencies and deadlines."""
        ...

    async def sleep(self, seconds: float) -> None: ...
