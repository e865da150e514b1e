"""Sliding windows of call outcomes and latencies in one-second buckets.

Latencies go into fixed histogram buckets (as Prometheus histograms do), so a window is
a handful of integers per second whatever the traffic, windows add up across processes
(the Redis book keeps the same buckets), and quantiles come from interpolation inside
a bucket: good to a bucket's width, which is all a latency-spike detector needs.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import deque
from dataclasses import dataclass

from paymend.health.outcomes import Outcome

LATENCY_BOUNDS_MS: tuple[float, ...] = (
    25, 50, 100, 200, 300, 500, 800, 1200, 2000, 3000, 5000, 8000, 12000,
)  # fmt: skip
"""Upper bounds of the latency buckets; one more bucket holds everything above."""
_OUTCOMES = tuple(Outcome)
_INDEX = {outcome: i for i, outcome in enumerate(_OUTCOMES)}
_WIDTH = len(_OUTCOMES) + len(LATENCY_BOUNDS_MS) + 1


def latency_bucket(latency_ms: float) -> int:
    return bisect_left(LATENCY_BOUNDS_MS, latency_ms)


def columns(outcome: Outcome, latency_ms: float | None) -> tuple[int, int | None]:
    """Where a call is counted in a bucket: its outcome's column and its latency's."""
    if latency_ms is None:
        return _INDEX[outcome], None
    return _INDEX[outcome], len(_OUTCOMES) + latency_bucket(latency_ms)


@dataclass(frozen=True, slots=True)
class WindowStats:
    """What one key saw over a stretch of time."""

    success: int = 0
    business: int = 0
    technical: int = 0
    unknown: int = 0
    latency: tuple[int, ...] = (0,) * (len(LATENCY_BOUNDS_MS) + 1)

    @classmethod
    def from_row(cls, row: list[int]) -> WindowStats:
        n = len(_OUTCOMES)
        return cls(row[0], row[1], row[2], row[3], tuple(row[n:]))

    @property
    def calls(self) -> int:
        return self.success + self.business + self.technical + self.unknown

    @property
    def failures(self) -> int:
        """Calls that count against the channel: technical failures and unknowns."""
        return self.technical + self.unknown

    @property
    def answered(self) -> int:
        """Calls where the channel did its job or failed at it (business declines are
        the payer's, so they are left out of the channel's rates)."""
        return self.success + self.failures

    @property
    def error_rate(self) -> float:
        return self.failures / self.answered if self.answered else 0.0

    @property
    def success_rate(self) -> float:
        return self.success / self.answered if self.answered else 1.0

    def latency_quantile(self, q: float) -> float | None:
        """The q-quantile of latency in ms, interpolated inside its bucket."""
        total = sum(self.latency)
        if total == 0:
            return None
        rank = q * total
        seen = 0
        for i, n in enumerate(self.latency):
            if n and seen + n >= rank:
                lo = LATENCY_BOUNDS_MS[i - 1] if i > 0 else 0.0
                hi = LATENCY_BOUNDS_MS[i] if i < len(LATENCY_BOUNDS_MS) else 2 * lo
                return lo + (hi - lo) * max(0.0, rank - seen) / n
            seen += n
        return LATENCY_BOUNDS_MS[-1] * 2

    def __add__(self, other: WindowStats) -> WindowStats:
        return WindowStats(
            self.success + other.success,
            self.business + other.business,
            self.technical + other.technical,
            self.unknown + other.unknown,
            tuple(a + b for a, b in zip(self.latency, other.latency, strict=True)),
        )


class SlidingWindow:
    """Buckets of `bucket_s` seconds over `span_s`, with running totals so the whole
    span reads in constant time (routing reads it for every payment), and running sums
    so any stretch of it reads with one subtraction (the playbooks read a stretch of
    every key every second, and a breaker at every failure)."""

    def __init__(self, span_s: float = 60.0, bucket_s: float = 1.0) -> None:
        self.span_s = span_s
        self.bucket_s = bucket_s
        self._buckets: deque[tuple[float, list[int]]] = deque()
        self._total = [0] * _WIDTH
        # _sums[k]: everything counted up to and including _buckets[k] since the window
        # began; _gone: what the buckets trimmed so far held
        self._sums: deque[list[int]] = deque()
        self._gone = [0] * _WIDTH
        # buckets in time order; a call counted at an earlier second than the newest
        # bucket's would end it, and stretches would then be added up bucket by bucket
        self._ordered = True

    def add(self, now: float, outcome: Outcome, latency_ms: float | None = None) -> None:
        self.count(now, *columns(outcome, latency_ms))

    def count(self, now: float, i: int, j: int | None) -> None:
        """`add` by `columns`: a call counted under several keys works them out once."""
        buckets = self._buckets
        second = now - now % self.bucket_s
        if not buckets or buckets[-1][0] != second:
            if buckets and second < buckets[-1][0]:
                self._ordered = False
            buckets.append((second, [0] * _WIDTH))
            self._sums.append(list(self._sums[-1] if self._sums else self._gone))
        bucket, sums, total = buckets[-1][1], self._sums[-1], self._total
        bucket[i] += 1
        sums[i] += 1
        total[i] += 1
        if j is not None:
            bucket[j] += 1
            sums[j] += 1
            total[j] += 1
        self._trim(now)

    def settle(self, at: float, outcome: Outcome) -> bool:
        """An unknown counted at `at` turned out `outcome`: move it, if its bucket is still
        in the window. False when there is nothing to move (the bucket is gone, or holds
        no unknown), so a correction can never count a call twice."""
        second = at - at % self.bucket_s
        unknown, j = _INDEX[Outcome.UNKNOWN], _INDEX[outcome]
        for k in range(len(self._buckets) - 1, -1, -1):  # newest first: corrections are recent
            start, bucket = self._buckets[k]
            if start < second:
                return False
            if start == second:
                if bucket[unknown] == 0:
                    return False
                bucket[unknown] -= 1
                bucket[j] += 1
                self._total[unknown] -= 1
                self._total[j] += 1
                for q in range(k, len(self._sums)):  # the running sums from it on
                    sums = self._sums[q]
                    sums[unknown] -= 1
                    sums[j] += 1
                return True
        return False

    def stats(self, now: float, last_s: float | None = None, upto_s: float = 0.0) -> WindowStats:
        """Outcomes in the buckets that start within (now - last_s, now - upto_s]:
        `upto_s` > 0 reads an older stretch, a baseline to compare the latest with."""
        self._trim(now)
        if last_s is None and upto_s == 0.0:
            return WindowStats.from_row(self._total)
        since = now - (last_s if last_s is not None else self.span_s)
        until = now - upto_s
        if not self._ordered:
            return self._added_up(since, until)
        buckets = self._buckets
        first = bisect_left(buckets, since, key=_start)  # the oldest bucket from `since`
        end = bisect_right(buckets, until, lo=first, key=_start)  # ...and to `until`
        if end <= first:
            return WindowStats()
        upto = self._sums[end - 1]
        before = self._sums[first - 1] if first > 0 else self._gone
        return WindowStats.from_row([a - b for a, b in zip(upto, before, strict=True)])

    def _added_up(self, since: float, until: float) -> WindowStats:
        """`stats` bucket by bucket, for buckets out of time order."""
        inside = []
        for start, bucket in reversed(self._buckets):  # newest first: stop at `since`
            if start < since:
                break
            if start <= until:
                inside.append(bucket)
        if not inside:
            return WindowStats()
        return WindowStats.from_row([sum(column) for column in zip(*inside, strict=True)])

    def _trim(self, now: float) -> None:
        while self._buckets and self._buckets[0][0] < now - self.span_s:  # started before
            _, old = self._buckets.popleft()
            self._gone = self._sums.popleft()
            for i, n in enumerate(old):
                self._total[i] -= n


def _start(bucket: tuple[float, list[int]]) -> float:
    return bucket[0]
