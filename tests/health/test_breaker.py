"""Circuit breakers: open fast on technical failures, never on declines, come back alone."""

from __future__ import annotations

from paymend.health.book import HealthBook
from paymend.health.breaker import Breaker, BreakerSettings, BreakerState
from paymend.health.outcomes import Outcome
from paymend.health.window import SlidingWindow

T, B, S = Outcome.TECHNICAL, Outcome.BUSINESS, Outcome.SUCCESS


def test_five_technical_failures_in_a_row_open_the_circuit() -> None:
    b = Breaker("sim_a")
    moves = [b.record(0.1 * i, T) for i in range(5)]
    assert moves[:4] == [None] * 4
    assert moves[4] is not None and moves[4].after is BreakerState.OPEN
    assert "5 technical failures in a row" in moves[4].why
    assert b.allow(0.6) == (False, None)


def test_declines_never_open_it_and_reset_the_run() -> None:
    b = Breaker("sim_a")
    for i in range(200):
        assert b.record(i * 0.01, B) is None  # a wave of insufficient funds
    for i in range(4):
        b.record(3 + i * 0.01, T)
    b.record(3.1, B)  # the channel answered: the run of failures is broken
    assert b.record(3.2, T) is None
    assert b.state is BreakerState.CLOSED


def test_an_error_rate_over_the_window_opens_it() -> None:
    b = Breaker("sim_a", BreakerSettings(consecutive=100, error_rate=0.5, min_calls=20))
    moves = []
    for i in range(40):
        moves.append(b.record(i * 0.1, T if i % 2 else S))
    opened = [m for m in moves if m is not None]
    assert len(opened) == 1 and opened[0].after is BreakerState.OPEN
    assert "error rate" in opened[0].why


def test_half_open_probes_close_it_or_open_it_again() -> None:
    settings = BreakerSettings(open_s=10, probes=3)
    b = Breaker("sim_a", settings)
    for i in range(5):
        b.record(i * 0.1, T)
    allowed, moved = b.allow(10.5)
    assert allowed and moved is not None and moved.after is BreakerState.HALF_OPEN
    assert b.allow(10.6)[0] and b.allow(10.7)[0]
    assert b.allow(10.8) == (False, None)  # three probes at most
    b.record(11, S)
    b.record(11.1, S)
    closed = b.record(11.2, S)
    assert closed is not None and closed.after is BreakerState.CLOSED
    for i in range(5):
        b.record(20 + i * 0.1, T)
    b.allow(31)
    reopened = b.record(31.1, T)
    assert reopened is not None and reopened.after is BreakerState.OPEN


def test_probes_that_never_report_back_are_retried() -> None:
    b = Breaker("sim_a", BreakerSettings(open_s=10, probes=1))
    for i in range(5):
        b.record(i * 0.1, T)
    assert b.allow(10.5)[0]
    assert not b.allow(11)[0]
    assert b.allow(21)[0]  # the lost probe does not leave it half-open forever


def test_the_book_logs_every_transition() -> None:
    book = HealthBook()
    for i in range(5):
        book.record("sim_a", i * 0.1, T)
    assert book.state("sim_a") is BreakerState.OPEN
    assert book.state("sim_b") is BreakerState.CLOSED
    assert [t.after for t in book.transitions] == [BreakerState.OPEN]


def test_the_window_forgets_old_seconds() -> None:
    w = SlidingWindow(span_s=10)
    for i in range(30):
        w.add(float(i), T)
    assert w.counts(29.5)[T] == 10
    assert w.counts(29.5, last_s=3)[T] == 3
