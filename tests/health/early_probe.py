"""One scenario for every Health implementation: a payment with nowhere else to go may
probe an open circuit early, once per `last_resort_s`, and its success reopens the way."""

from __future__ import annotations

from paymend.health.book import Health
from paymend.health.breaker import BreakerState
from paymend.health.outcomes import Outcome


def check_early_probes(book: Health, t0: float) -> None:
    """`book` uses open_s=10, max_open_s=120, probes=2, last_resort_s=10."""
    for i in range(5):
        book.record(["sim_b"], t0 + i * 0.01, Outcome.TECHNICAL)
    book.allow("sim_b", t0 + 10.1)  # the scheduled probe fails: now 20 s open
    book.record(["sim_b"], t0 + 10.2, Outcome.TECHNICAL, 100)
    assert not book.allow("sim_b", t0 + 15)  # an ordinary payment waits
    assert not book.ready("sim_b", t0 + 15, last_resort=True)  # 10 s since it opened
    assert book.ready("sim_b", t0 + 20.3, last_resort=True)
    assert book.allow("sim_b", t0 + 20.3, last_resort=True)
    assert not book.allow("sim_b", t0 + 21, last_resort=True)  # one per 10 s
    book.record(["sim_b"], t0 + 21, Outcome.TECHNICAL, 700)  # it failed: nothing changes
    assert book.state("sim_b") is BreakerState.OPEN
    assert book.allow("sim_b", t0 + 30.4)  # the scheduled probe, where it was
    book.record(["sim_b"], t0 + 30.5, Outcome.TECHNICAL, 100)  # fails: 40 s open
    assert book.allow("sim_b", t0 + 40.6, last_resort=True)
    # the fault is over: the early probe passes and counts as the first of two
    book.record(["sim_b"], t0 + 40.8, Outcome.SUCCESS, 200)
    assert book.state("sim_b") is BreakerState.HALF_OPEN
    assert book.allow("sim_b", t0 + 41)  # any payment may take the second probe
    book.record(["sim_b"], t0 + 41.2, Outcome.SUCCESS, 200)
    assert book.state("sim_b") is BreakerState.CLOSED  # 39 s before its wait was over


def check_in_flight_success_proves_nothing(book: Health, t0: float) -> None:
    for i in range(5):
        book.record(["sim_b"], t0 + i * 0.01, Outcome.TECHNICAL)
    book.record(["sim_b"], t0 + 1, Outcome.SUCCESS, 2000)  # sent before it opened
    assert book.state("sim_b") is BreakerState.OPEN
    book.allow("sim_b", t0 + 10.5)  # half-open: the probe goes out
    book.record(["sim_b"], t0 + 10.6, Outcome.SUCCESS, 3000)  # began before it: no probe
    assert book.state("sim_b") is BreakerState.HALF_OPEN
    assert not book.allow("sim_b", t0 + 10.7)  # the probe is still out
