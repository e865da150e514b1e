"""The oracle's verdicts and the naive checkout's outcomes, worked out beside the run.

Both replay the scenario's own draws for each arrival and need nothing the engine does,
so where the platform can fork they are worked out in a child process while the engine
runs: on a machine with a second core they cost the run no wall time (about 4 s of the
primary outage's CPU). The child gets the arrivals the run will answer from the scenario
itself, as the runner draws them; the run checks that they are its own, payment for
payment, and otherwise (or when the child failed or cannot be forked) works them out
itself (lab/metrics.py), with the same result.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import sys
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import Any

from paymend.lab.arrivals import Arrival, arrivals
from paymend.lab.fraud import Fraud
from paymend.lab.naive import NaiveCheckout, NaiveResult
from paymend.lab.oracle import Limits, Oracle, Verdict
from paymend.lab.scenario import Scenario

Answers = tuple[list[Verdict], list[NaiveResult]]


class Foresight:
    """A child process working out `Answers` for the scenario's good arrivals."""

    def __init__(self, scenario: Scenario, limits: Limits, deadline_s: float) -> None:
        self._process: Any = None
        self._answers: Connection | None = None
        if "fork" not in multiprocessing.get_all_start_methods():
            return
        context = multiprocessing.get_context("fork")
        for stream in (sys.stdout, sys.stderr):  # the child flushes its copy when it ends
            stream.flush()
        receive, send = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_work, args=(scenario, limits, deadline_s, send), daemon=True
        )
        self._process.start()
        send.close()
        self._answers = receive

    def answers(self, good: list[Arrival]) -> Answers | None:
        """The child's answers if it worked them out for exactly `good` (the run's own
        arrivals, in order), else None."""
        if self._answers is None:
            return None
        try:
            ns, judged, naive = self._answers.recv()
        except (EOFError, OSError):
            return None
        finally:
            self.close()
        if ns != [a.n for a in good]:
            return None
        return judged, naive

    def close(self) -> None:
        """Stop the child if it still works (a run that failed or was stopped)."""
        if self._answers is not None:
            self._answers.close()
            self._answers = None
        if self._process is not None:
            if self._process.is_alive():
                self._process.terminate()
            self._process.join()
            self._process = None


def answer(scenario: Scenario, limits: Limits, deadline_s: float, good: list[Arrival]) -> Answers:
    """The oracle's verdict and the naive checkout's outcome for each of `good`."""
    oracle = Oracle(scenario, limits)
    naive = NaiveCheckout(scenario, deadline_s)
    return [oracle.verdict(a) for a in good], [naive.outcome(a) for a in good]


def good_arrivals(scenario: Scenario) -> list[Arrival]:
    """The arrivals the run answers as the shop's customers (not the attacks), in order."""
    fraud = Fraud(scenario)
    # drawing the attacks writes their signals, and an account taken over carries its
    # age, counted back from the run's start; when and in what order anyone arrives
    # does not depend on it, so any start gives the same arrivals
    fraud.start = _ANY_START
    return [a for a in fraud.merged(arrivals(scenario)) if not fraud.is_attack(a)]


_ANY_START = datetime(2026, 1, 1, tzinfo=UTC)


def _work(scenario: Scenario, limits: Limits, deadline_s: float, send: Connection) -> None:
    with contextlib.closing(send):
        good = good_arrivals(scenario)
        judged, naive = answer(scenario, limits, deadline_s, good)
        with contextlib.suppress(OSError):  # the run ended without waiting
            send.send(([a.n for a in good], judged, naive))
