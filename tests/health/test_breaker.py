"""Circuit breakers: open fast on technical failures, never on declines, come back alone."""

from __future__ import annotations

from paymend.health.book import HealthBook
from paymend.health.breaker import Breaker, BreakerSettings, BreakerState
from paymend.health.outcomes import Outcome
from paymend.health.window import SlidingWindow
from tests.health.early_probe import check_early_probes, check_in_flight_success_proves_nothing
from tests.health.settling import (
    check_a_correction_never_counts_a_call_twice,
    check_a_found_charge_counts_as_a_success,
)

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


def test_half_open_probes_go_one_at_a_time_and_close_it() -> None:
    settings = BreakerSettings(open_s=10, probes=3)
    b = Breaker("sim_a", settings)
    for i in range(5):
        b.record(i * 0.1, T)
    allowed, moved = b.allow(10.5)
    assert allowed and moved is not None and moved.after is BreakerState.HALF_OPEN
    assert b.allow(10.6) == (False, None)  # one probe out at a time
    b.record(11, S)
    assert b.allow(11.1)[0]
    b.record(11.2, S)
    assert b.allow(11.3)[0]
    closed = b.record(11.4, S)
    assert closed is not None and closed.after is BreakerState.CLOSED
    assert b.allow(11.5) == (True, None)


def test_a_failed_probe_doubles_the_wait_up_to_the_cap() -> None:
    b = Breaker("sim_a", BreakerSettings(open_s=10, max_open_s=30, probes=1))
    for i in range(5):
        b.record(i * 0.1, T)
    probes = []
    t = 0.4
    while t < 200:
        t += 0.5
        if b.allow(t)[0]:
            probes.append(round(t - 0.4, 1))
            b.record(t, T)
    # waits of 10, 20, then 30 s each (capped)
    assert probes[:5] == [10.0, 30.0, 60.0, 90.0, 120.0]
    b.allow(t + 31)
    closed = b.record(t + 31, S)
    assert closed is not None and closed.after is BreakerState.CLOSED
    for i in range(5):
        b.record(t + 40 + i * 0.1, T)
    assert b.open_for == 10  # a fresh opening starts from the short wait again


def test_a_business_decline_is_a_passing_probe() -> None:
    b = Breaker("sim_a", BreakerSettings(open_s=10, probes=1))
    for i in range(5):
        b.record(i * 0.1, T)
    assert b.allow(10.5)[0]
    closed = b.record(10.6, Outcome.BUSINESS)
    assert closed is not None and closed.after is BreakerState.CLOSED


def test_an_unknown_outcome_counts_as_a_failure() -> None:
    b = Breaker("sim_a")
    for i in range(5):
        moved = b.record(i * 0.1, Outcome.UNKNOWN)
    assert moved is not None and moved.after is BreakerState.OPEN


def test_a_playbook_can_force_it_open() -> None:
    b = Breaker("sim_a|bank=CMB")
    moved = b.force_open(3.0, "playbook bank-errors")
    assert moved is not None and moved.after is BreakerState.OPEN
    assert b.force_open(4.0, "again") is None
    assert not b.allow(5.0)[0]


def test_the_book_logs_every_transition() -> None:
    book = HealthBook()
    for i in range(5):
        book.record(["sim_a"], i * 0.1, T)
    assert book.state("sim_a") is BreakerState.OPEN
    assert book.state("sim_b") is BreakerState.CLOSED
    assert [t.after for t in book.transitions] == [BreakerState.OPEN]


def test_the_window_forgets_old_seconds() -> None:
    w = SlidingWindow(span_s=10)
    for i in range(30):
        w.add(float(i), T)
    assert w.stats(29.5).technical == 10
    assert w.stats(29.5, last_s=3).technical == 3


def test_the_book_keeps_a_breaker_per_scope_and_windows_for_every_key() -> None:
    book = HealthBook()
    cmb = ["sim_a", "sim_a|bank=CMB", "*|bank=CMB"]
    icbc = ["sim_a", "sim_a|bank=ICBC", "*|bank=ICBC"]
    for i in range(40):
        book.record(icbc, i * 0.1, S, 150.0)
        if i % 8 == 0:
            book.record(cmb, i * 0.1 + 0.05, T, 3000.0)
    assert book.state("sim_a|bank=CMB") is BreakerState.OPEN  # five in a row for CMB
    assert book.state("sim_a") is BreakerState.CLOSED  # the channel as a whole is fine
    assert book.state("*|bank=CMB") is BreakerState.CLOSED  # cross-channel: no breaker
    assert book.allow("*|bank=CMB", 4.0)
    whole = book.stats("sim_a", 4.0)
    assert whole is not None and (whole.success, whole.technical) == (40, 5)
    assert book.last_success("sim_a|bank=ICBC") == 39 * 0.1
    assert book.last_success("sim_a|bank=CMB") is None
    history = book.history("*|bank=CMB", 4.0, last_s=60)
    assert history is not None and history.technical == 5
    p99 = history.latency_quantile(0.99)
    assert p99 is not None and p99 > 2000
    assert set(book.keys()) == set(cmb + icbc[1:])


def test_a_success_that_was_in_flight_when_the_run_began_does_not_end_it() -> None:
    b = Breaker("sim_a")
    b.record(10.0, T)
    b.record(10.1, T)
    b.record(10.2, S, latency_ms=600)  # sent at 9.6, before the channel broke
    b.record(10.3, T)
    b.record(10.4, T)
    opened = b.record(10.5, T)
    assert opened is not None and opened.after is BreakerState.OPEN


def test_a_success_sent_after_the_run_began_ends_it() -> None:
    b = Breaker("sim_a")
    for i in range(4):
        b.record(10.0 + i * 0.1, T)
    b.record(10.5, S, latency_ms=100)  # sent at 10.4: the channel answers again
    assert b.record(10.6, T) is None
    assert b.state is BreakerState.CLOSED


def test_ready_asks_without_taking_the_probe() -> None:
    b = Breaker("sim_a", BreakerSettings(open_s=10))
    assert b.ready(0.0)
    for i in range(5):
        b.record(i * 0.1, T)
    assert not b.ready(5.0)
    assert b.ready(10.5) and b.ready(10.5)  # asking twice takes nothing
    assert b.allow(10.5)[0]
    assert not b.ready(10.6)  # now the probe is out


def test_a_payment_with_nowhere_else_to_go_probes_early() -> None:
    settings = BreakerSettings(open_s=10, max_open_s=120, probes=2, last_resort_s=10)
    check_early_probes(HealthBook(settings), 1000.0)
    check_in_flight_success_proves_nothing(HealthBook(settings), 1000.0)


def test_a_timeout_found_charged_counts_as_a_success() -> None:
    check_a_found_charge_counts_as_a_success(HealthBook())


def test_a_correction_never_counts_a_call_twice() -> None:
    check_a_correction_never_counts_a_call_twice(HealthBook())


def test_a_correction_past_the_short_window_still_reaches_the_history() -> None:
    book = HealthBook()
    book.record(["*|bank=CMB"], 100.0, Outcome.UNKNOWN, 3000.0)
    book.record(["*|bank=CMB"], 200.0, S, 200.0)  # the short window let 100.0 go
    book.settle(["*|bank=CMB"], 100.0, S)
    history = book.history("*|bank=CMB", 200.0, last_s=300)
    assert history is not None and (history.success, history.unknown) == (2, 0)
    recent = book.stats("*|bank=CMB", 200.0)
    assert recent is not None and (recent.success, recent.unknown) == (1, 0)
