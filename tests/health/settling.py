"""What every health book must do when a status query finds that a timeout charged:
shared by the in-memory book's tests and the Redis book's."""

from __future__ import annotations

from paymend.health.book import Health
from paymend.health.breaker import BreakerState
from paymend.health.outcomes import Outcome

U, S = Outcome.UNKNOWN, Outcome.SUCCESS
KEYS = ["sim_b", "sim_b|bank=CMB", "*|bank=CMB"]


def check_a_found_charge_counts_as_a_success(book: Health) -> None:
    """Ten timeouts in one second, three of them found charged: the windows count seven
    unknowns and three successes; the breaker keeps what it judged when they happened."""
    for i in range(10):
        book.record(KEYS, 1000 + i * 0.05, U, 3000.0)
    before = book.stats("*|bank=CMB", 1002.0)
    assert before is not None and (before.success, before.unknown) == (0, 10)
    for _ in range(3):
        book.settle(KEYS, 1000.3, S)
    for key in KEYS:
        now = book.stats(key, 1002.0)
        assert now is not None and (now.success, now.unknown) == (3, 7), key
        assert now.error_rate == 0.7
        older = book.history(key, 1002.0, last_s=60)
        assert older is not None and (older.success, older.unknown) == (3, 7), key
    assert book.state("sim_b") is BreakerState.OPEN  # five unknowns in a row opened it


def check_a_correction_never_counts_a_call_twice(book: Health) -> None:
    """Only unknowns still counted in the bucket of their moment move: more corrections
    than timeouts, or one for a second that held none, change nothing more."""
    for i in range(4):
        book.record(KEYS, 2000 + i * 0.1, U, 3000.0)
    book.record(KEYS, 2001.5, S, 200.0)
    for _ in range(6):
        book.settle(KEYS, 2000.2, S)
    book.settle(KEYS, 2001.5, S)  # that second's call succeeded at once
    book.settle(KEYS, 2030.0, S)  # nothing was counted then
    now = book.stats("*|bank=CMB", 2031.0)
    assert now is not None and (now.success, now.unknown, now.calls) == (5, 0, 5)
