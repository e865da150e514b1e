"""The retry budget: same-channel retries may be at most a share of first attempts over
a sliding window, so a sick provider is not hammered by a retry storm.

Per process, in memory (shared state across processes comes with the health windows).
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BudgetSettings:
    ratio: float = 0.2  # retries per first attempt
    window_s: float = 60.0
    floor: int = 3  # always allow a few, so a quiet channel can still retry


class RetryBudget:
    def __init__(self, settings: BudgetSettings | None = None) -> None:
        self.settings = settings or BudgetSettings()
        self._firsts: dict[str, deque[float]] = defaultdict(deque)
        self._retries: dict[str, deque[float]] = defaultdict(deque)

    def first(self, channel: str, now: float) -> None:
        self._firsts[channel].append(now)

    def try_retry(self, channel: str, now: float) -> bool:
        """Spend one retry on `channel` if the budget allows it."""
        firsts, retries = (
            self._trim(self._firsts[channel], now),
            self._trim(self._retries[channel], now),
        )
        allowed = max(self.settings.floor, int(self.settings.ratio * len(firsts)))
        if len(retries) >= allowed:
            return False
        retries.append(now)
        return True

    def _trim(self, times: deque[float], now: float) -> deque[float]:
        while times and times[0] < now - self.settings.window_s:
            times.popleft()
        return times
