"""A sliding window of outcome counts in one-second buckets."""

from __future__ import annotations

from collections import deque

from paymend.health.outcomes import Outcome


class SlidingWindow:
    def __init__(self, span_s: float = 60.0) -> None:
        self.span_s = span_s
        self._buckets: deque[tuple[int, dict[Outcome, int]]] = deque()

    def add(self, now: float, outcome: Outcome) -> None:
        second = int(now)
        if not self._buckets or self._buckets[-1][0] != second:
            self._buckets.append((second, dict.fromkeys(Outcome, 0)))
        self._buckets[-1][1][outcome] += 1
        self._trim(now)

    def counts(self, now: float, last_s: float | None = None) -> dict[Outcome, int]:
        self._trim(now)
        since = now - (last_s if last_s is not None else self.span_s)
        total = dict.fromkeys(Outcome, 0)
        for second, bucket in self._buckets:
            if second >= since:  # buckets that start inside the window
                for outcome, n in bucket.items():
                    total[outcome] += n
        return total

    def _trim(self, now: float) -> None:
        while self._buckets and self._buckets[0][0] + 1 <= now - self.span_s:
            self._buckets.popleft()
