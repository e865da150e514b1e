"""Crash safety: kill paymend with SIGKILL mid-run, restart it, and compare with the provider.

`crash_driver` is a real paymend process (system clock, threaded store, worker task;
forked from `crash_forks`, which imported it once, so each of the dozen runs starts at once)
paying 60 orders against two simulated card channels that sometimes hang (and half of
those charge anyway), sometimes lose the response after charging, and decline some. The
channels' ledger is a SQLite file, so the provider's truth survives every kill.

The test kills the driver at random points, several times: while checkouts are in
flight (after a random number of checkouts started, plus a random delay), and while a
restarted process's worker is finishing what the previous one left (orphaned pending
attempts, status queries, failovers, refunds of duplicate charges). Then it lets a
process pay the orders never created, lets the worker finish everything, and proves:

- every order has exactly one payment (a restart never pays an order again);
- every payment is final or requires_action, and no attempt is left pending or unknown;
- charge by charge, the ledger and the store agree: each charge the provider booked
  belongs to a stored payment and attempt; the one charge a succeeded payment keeps is
  its succeeded attempt's; every other charge was refunded in full (reversed attempt);
  a payment that did not succeed has nothing left charged;
- no customer is charged twice (at most one charge left un-refunded per customer).

On SQLite and PostgreSQL. Seeded (`PAYMEND_CRASH_SEED` to try others); the kill points
also depend on real timing, which is the point.
"""

from __future__ import annotations

import json
import os
import queue
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import sqlalchemy as sa

from paymend.providers.simulator import ChargeState
from paymend.providers.simulator_ledger import SqliteLedger
from paymend.store.tables import attempts, payments
from tests.engine.crash_driver import MERCHANT
from tests.engine.forked import Forks

ROOT = Path(__file__).resolve().parents[2]
SEED = int(os.environ.get("PAYMEND_CRASH_SEED", "4"))
ORDERS = 60
CYCLES = 5  # each: a kill mid-checkouts, then a kill while the worker recovers
FINAL_STATUSES = {
    "succeeded",
    "failed",
    "canceled",
    "requires_action",
    "refunded",
    "partially_refunded",
}
LINE_WAIT_S = 30.0  # bound on waiting for the driver's next line (startup included)


@dataclass
class Runs:
    """Where drivers come from (forked, already imported) and where their logs go."""

    forks: Forks
    log: TextIO


class Driver:
    """One `crash_driver` process, its stdout read line by line on a thread."""

    def __init__(self, args: list[str], runs: Runs) -> None:
        self.proc = runs.forks.start(args, runs.log)
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.killed = False
        self.ended = False  # all of stdout was read

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def until(self, match: Callable[[str], bool], timeout_s: float = LINE_WAIT_S) -> str | None:
        """The next line that matches; None when the process ended without one."""
        deadline = time.monotonic() + timeout_s
        while not self.ended:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no matching line from the driver in {timeout_s}s") from None
            if line is None:
                self.ended = True
                break
            self.lines.append(line)
            if match(line):
                return line
        return None

    def kill_after(self, seconds: float) -> None:
        """The crash point: SIGKILL after `seconds`, unless the process ended before."""
        try:
            self.proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGKILL)
            self.killed = True
        self.finish()

    def finish(self, timeout_s: float = 90.0) -> int:
        """Wait for the exit and read what it printed before it; the exit code."""
        code = self.proc.wait(timeout=timeout_s)
        self.until(lambda _: False)
        self._reader.join(timeout=5)
        return code

    def stop(self) -> None:
        """Never leave a driver behind, whatever failed."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._reader.join(timeout=5)  # the pipe's end reached: nothing reads it any more
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@dataclass
class Kill:
    mode: str
    after_s: float
    killed: bool
    in_flight: list[str] = field(default_factory=list)  # orders, or worker jobs, cut short


def _args(db_url: str, ledger: Path, seed: int, *, finish: bool = False) -> list[str]:
    args = ["--db", db_url, "--ledger", str(ledger), "--orders", str(ORDERS)]
    return [*args, "--seed", str(seed), *(["--finish"] if finish else [])]


def _kill_checkouts(db_url: str, ledger: Path, seed: int, rng: random.Random, runs: Runs) -> Kill:
    """Kill after a random number of checkouts started, plus a random delay."""
    driver = Driver(_args(db_url, ledger, seed), runs)
    try:
        ready = driver.until(lambda line: line.startswith("ready"))
        assert ready is not None, f"the driver ended before it was ready: {driver.lines}"
        todo = int(ready.split()[1])
        target, started = rng.randint(1, max(1, ORDERS // CYCLES)), 0

        def nth_start(line: str) -> bool:
            nonlocal started
            started += line.startswith("start ")
            return started >= target

        if todo:
            driver.until(nth_start)
        delay = rng.uniform(0.0, 0.1)
        driver.kill_after(delay)
    finally:
        driver.stop()
    begun = {line.split()[1] for line in driver.lines if line.startswith("start ")}
    answered = {line.split()[1] for line in driver.lines if line.startswith("done ")}
    return Kill("checkout", delay, driver.killed, sorted(begun - answered))


def _kill_recovery(db_url: str, ledger: Path, seed: int, rng: random.Random, runs: Runs) -> Kill:
    """Kill a worker finishing what the last crash left, in one of its first jobs."""
    driver = Driver(_args(db_url, ledger, seed, finish=True), runs)
    try:
        assert driver.until(lambda line: line == "ready finish") is not None, driver.lines
        target, begun = rng.randint(1, 4), 0

        def nth_job(line: str) -> bool:
            nonlocal begun
            begun += line.startswith("work ")
            return begun >= target

        delay = rng.uniform(0.0, 0.05)
        if driver.until(nth_job) is not None:
            driver.kill_after(delay)
    finally:
        driver.stop()
    jobs = [line.split(" ", 1)[1] for line in driver.lines if line.startswith("work ")]
    ended = {line.split(" ", 1)[1] for line in driver.lines if line.startswith("worked ")}
    return Kill("recovery", delay, driver.killed, in_flight=[j for j in jobs if j not in ended])


def _run_to_end(args: list[str], runs: Runs) -> list[str]:
    driver = Driver(args, runs)
    try:
        code = driver.finish()
    finally:
        driver.stop()
    assert code == 0, f"the driver exited with {code}; see {runs.log.name}: {driver.lines[-5:]}"
    return driver.lines


def _store_rows(db_url: str) -> tuple[list[Any], list[Any]]:
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            pays = conn.execute(sa.select(payments).where(payments.c.merchant_id == MERCHANT)).all()
            tries = conn.execute(sa.select(attempts)).all()
    finally:
        engine.dispose()
    return list(pays), list(tries)


def test_killed_mid_run_and_restarted_nobody_is_charged_twice(db_url: str, tmp_path: Path) -> None:
    rng = random.Random(SEED)
    ledger_path = tmp_path / "ledger.sqlite"
    kills: list[Kill] = []
    runs_seeds = iter(range(SEED * 1000, SEED * 1000 + 100))  # each process draws other faults
    with (tmp_path / "driver.log").open("a") as log, Forks() as forks:
        runs = Runs(forks, log)
        for _ in range(CYCLES):
            kills.append(_kill_checkouts(db_url, ledger_path, next(runs_seeds), rng, runs))
            kills.append(_kill_recovery(db_url, ledger_path, next(runs_seeds), rng, runs))
        paid = _run_to_end(_args(db_url, ledger_path, next(runs_seeds)), runs)
        assert paid[-1] == "paid", paid[-5:]
        out = _run_to_end(_args(db_url, ledger_path, next(runs_seeds), finish=True), runs)
    summary = json.loads(out[-1])
    print(f"kills: {kills}; finish: {summary}")  # shown with -s, and on failure
    where = f"seed {SEED}, kills {kills}, logs {tmp_path / 'driver.log'}"
    checkout_kills = [k for k in kills if k.mode == "checkout" and k.killed]
    assert sum(len(k.in_flight) for k in checkout_kills) > 0, f"no kill hit a checkout: {where}"
    assert summary["drained"], f"work left after {summary['seconds']}s: {summary}; {where}"
    check_agreement(db_url, ledger_path, where)


def check_agreement(db_url: str, ledger_path: Path, where: str) -> None:
    """The store and the provider's ledger after the last run, charge by charge."""
    pays, tries = _store_rows(db_url)
    by_id = {p.id: p for p in pays}
    by_key = {a.idempotency_key: a for a in tries}

    # one payment per order: a restart never created a second one
    orders = Counter(p.order_id for p in pays)
    assert orders == Counter(f"order-{i}" for i in range(ORDERS)), (orders, where)

    # every payment ended, every attempt's outcome is known
    open_payments = [(p.order_id, p.status) for p in pays if p.status not in FINAL_STATUSES]
    assert not open_payments, (open_payments, where)
    open_attempts = [(a.id, a.status) for a in tries if a.status in ("pending", "unknown")]
    assert not open_attempts, (open_attempts, where)

    ledger = SqliteLedger(ledger_path)
    try:
        charges = [c for c in ledger.all_charges() if c.state is ChargeState.CHARGED]
        net = {pid: ledger.net_charged(pid) for pid in by_id}
    finally:
        ledger.close()
    assert charges, f"the provider charged nothing: {where}"

    # every charge is for a stored payment, of its amount
    for c in charges:
        assert c.payment_id in by_id, (f"charge {c.reference} of no stored payment", where)
        assert c.amount.minor == by_id[c.payment_id].amount, (c, where)

    # no customer charged twice: at most one charge left un-refunded per customer
    kept = Counter(by_id[c.payment_id].customer_id for c in charges if c.refunded < c.amount.minor)
    twice = {customer: n for customer, n in kept.items() if n > 1}
    assert not twice, (twice, where)

    # what each customer is out of pocket is what the store says they paid
    for pid, p in by_id.items():
        owed = p.amount if p.status == "succeeded" else 0
        assert net[pid] == owed, (p.order_id, p.status, net[pid], owed, where)

    # charge by charge: the charge the provider kept is the payment's succeeded attempt;
    # one it refunded in full is an attempt the store reversed
    for c in charges:
        attempt = by_key.get(c.idempotency_key)
        assert attempt is not None, (f"charge {c.reference} of no stored attempt", where)
        assert attempt.payment_id == c.payment_id, (c, attempt.payment_id, where)
        if c.refunded < c.amount.minor:
            assert attempt.status == "succeeded", (f"{c.reference} kept", attempt.status, where)
            assert attempt.provider_reference == c.reference, (c, attempt.id, where)
        else:
            assert attempt.status == "reversed", (f"{c.reference} refunded", attempt.status, where)

    # and each success the store records is a charge the provider kept
    kept_refs = {c.reference for c in charges if c.refunded < c.amount.minor}
    for a in tries:
        if a.status == "succeeded":
            assert a.provider_reference in kept_refs, (a.id, a.provider_reference, where)
