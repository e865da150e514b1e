"""A window reads any stretch from running sums; it must read what adding up its buckets
one by one reads, whatever order calls are counted and corrected in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from paymend.health.outcomes import Outcome
from paymend.health.window import LATENCY_BOUNDS_MS, SlidingWindow, WindowStats, latency_bucket

OUTCOMES = list(Outcome)


@dataclass(slots=True)
class Call:
    bucket: int  # index into the reference's bucket starts
    outcome: Outcome
    lat: int | None  # latency bucket


class Buckets:
    """The window as a plain list of (second, outcome, latency bucket) counts: the
    reference every read is checked against."""

    def __init__(self, span_s: float, bucket_s: float) -> None:
        self.span_s, self.bucket_s = span_s, bucket_s
        self.calls: list[Call] = []
        self.starts: list[float] = []  # the seconds buckets opened at, in order

    def add(self, now: float, outcome: Outcome, latency_ms: float | None) -> None:
        second = now - now % self.bucket_s
        if not self.starts or self.starts[-1] != second:
            self.starts.append(second)
        lat = None if latency_ms is None else latency_bucket(latency_ms)
        self.calls.append(Call(len(self.starts) - 1, outcome, lat))
        self.trim(now)

    def trim(self, now: float) -> None:
        while self.starts and self.starts[0] < now - self.span_s:
            self.starts.pop(0)
            self.calls = [Call(c.bucket - 1, c.outcome, c.lat) for c in self.calls if c.bucket]

    def settle(self, at: float, outcome: Outcome) -> bool:
        second = at - at % self.bucket_s
        for b in range(len(self.starts) - 1, -1, -1):
            if self.starts[b] < second:
                return False
            if self.starts[b] == second:
                for call in self.calls:
                    if call.bucket == b and call.outcome is Outcome.UNKNOWN:
                        call.outcome = outcome
                        return True
                return False
        return False

    def stats(self, now: float, last_s: float | None, upto_s: float) -> WindowStats:
        self.trim(now)
        since = now - (last_s if last_s is not None else self.span_s)
        until = now - upto_s
        inside: set[int] = set()
        for b in range(len(self.starts) - 1, -1, -1):
            if self.starts[b] < since:
                break
            if self.starts[b] <= until:
                inside.add(b)
        if last_s is None and upto_s == 0.0:
            inside = set(range(len(self.starts)))
        row = [0] * (len(OUTCOMES) + len(LATENCY_BOUNDS_MS) + 1)
        for c in self.calls:
            if c.bucket in inside:
                row[OUTCOMES.index(c.outcome)] += 1
                if c.lat is not None:
                    row[len(OUTCOMES) + c.lat] += 1
        return WindowStats.from_row(row)


step = st.one_of(
    st.tuples(
        st.just("add"),
        st.floats(0.0, 3.0),  # time moves on by this (or back, below)
        st.sampled_from(OUTCOMES),
        st.one_of(st.none(), st.floats(0.0, 20_000.0)),
    ),
    st.tuples(st.just("back"), st.floats(0.0, 2.0)),  # a call counted a little late
    st.tuples(st.just("settle"), st.floats(0.0, 30.0), st.sampled_from(OUTCOMES[:3])),
    st.tuples(
        st.just("read"),
        st.one_of(st.none(), st.floats(0.5, 70.0)),
        st.sampled_from([0.0, 0.0, 5.0, 30.0]),
    ),
)


@settings(max_examples=300, deadline=None)
@given(bucket_s=st.sampled_from([1.0, 10.0]), steps=st.lists(step, max_size=120))
def test_every_stretch_reads_as_its_buckets_added_up(
    bucket_s: float, steps: list[tuple[Any, ...]]
) -> None:
    span_s = 60.0 if bucket_s == 1.0 else 300.0
    window, reference = SlidingWindow(span_s, bucket_s), Buckets(span_s, bucket_s)
    now = 1_000.0
    for s in steps:
        if s[0] == "add":
            _, dt, outcome, latency = s
            now += dt
            window.add(now, outcome, latency)
            reference.add(now, outcome, latency)
        elif s[0] == "back":
            late = now - s[1]
            window.add(late, Outcome.UNKNOWN, None)
            reference.add(late, Outcome.UNKNOWN, None)
        elif s[0] == "settle":
            at = now - s[1]
            assert window.settle(at, s[2]) == reference.settle(at, s[2])
        else:
            _, last_s, upto_s = s
            got = window.stats(now, last_s, upto_s)
            assert got == reference.stats(now, last_s, upto_s)
    assert window.stats(now) == reference.stats(now, None, 0.0)
    assert window.stats(now, 45.0, 5.0) == reference.stats(now, 45.0, 5.0)
