"""CPU per call of the store's hand-off to its threads, against `loop.run_in_executor`.

On PostgreSQL every transaction of paymend runs on one of the store's threads; the event
loop hands it over and awaits its answer (store/handoff.py). This measures that hand-off
alone: coroutines, `--concurrency` in flight, each awaiting `--calls` calls of one
`SELECT 1` on the calling thread's own psycopg connection (autocommit), through
`Handoff` and through a `ThreadPoolExecutor` of as many threads, the baseline. Both run
in this process in `--rounds` rounds, each taking its share in turn (bench/turns.py),
and the figure is this process's CPU time per call (all threads), which includes the
driver's work for the `SELECT 1`, the same for both.

    python bench/handoff.py [--calls 16000] [--concurrency 16] [--threads 8]
        [--rounds 5] [--postgres-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from paymend.store.handoff import Handoff
from servers import DEFAULT_PG_URL
from turns import in_turns, share_out

Run = Callable[[Callable[[None], Any]], Awaitable[Any]]


class _Query:
    """`SELECT 1` on the calling thread's own connection."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._own = threading.local()
        self._all: list[psycopg.Connection[Any]] = []
        self._lock = threading.Lock()

    def __call__(self, _: None) -> Any:
        conn = getattr(self._own, "conn", None)
        if conn is None:
            conn = self._own.conn = psycopg.connect(self._url, autocommit=True)
            with self._lock:
                self._all.append(conn)
        return conn.execute("SELECT 1").fetchone()

    def close(self) -> None:
        for conn in self._all:
            conn.close()


async def _drive(run: Run, query: _Query, calls: int, concurrency: int) -> float:
    """CPU seconds for `calls` calls, `concurrency` in flight."""

    async def lane(n: int) -> None:
        for _ in range(n):
            await run(query)

    before = time.process_time()
    await asyncio.gather(*(lane(n) for n in share_out(calls, concurrency)))
    return time.process_time() - before


async def measure(url: str, calls: int, concurrency: int, threads: int, rounds: int) -> None:
    loop = asyncio.get_running_loop()
    handoff = Handoff(threads, "bench-handoff")
    executor = ThreadPoolExecutor(threads, "bench-executor")
    query = _Query(url)
    runs: dict[str, Run] = {
        "executor": lambda fn: loop.run_in_executor(executor, fn, None),
        "handoff": lambda fn: handoff.run(fn, None),
    }
    names = list(runs)
    cpu = dict.fromkeys(names, 0.0)
    done = dict.fromkeys(names, 0)
    try:
        for name in names:  # warm-up: every thread connected
            await _drive(runs[name], query, 50 * threads, concurrency)
        for _, k, share in in_turns(len(names), calls, rounds):
            name = names[k]
            cpu[name] += await _drive(runs[name], query, share, concurrency)
            done[name] += share
    finally:
        handoff.shutdown()
        executor.shutdown()
        query.close()
    per_call = {name: cpu[name] / done[name] * 1e6 for name in names}
    for name in names:
        print(f"  {name:10s} {per_call[name]:7.1f} µs CPU/call ({done[name]} calls)")
    ratio = per_call["executor"] / per_call["handoff"]
    print(f"SUMMARY CPU per call, run_in_executor / Handoff: {ratio:.2f} (higher: Handoff cheaper)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=16000, help="calls per contender")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--postgres-url", default=DEFAULT_PG_URL)
    args = parser.parse_args(argv)
    if args.calls < 1 or args.concurrency < 1 or args.threads < 1:
        parser.error("--calls, --concurrency and --threads must be at least 1")
    if not 1 <= args.rounds <= args.calls:
        parser.error("--rounds must be 1..--calls")
    url = make_url(args.postgres_url).set(drivername="postgresql")
    dsn = url.render_as_string(hide_password=False)
    try:
        psycopg.connect(dsn, connect_timeout=5).close()
    except psycopg.Error as exc:
        print(f"postgresql skipped: {str(exc).strip().splitlines()[0]}")
        return 0
    print(
        f"store hand-off benchmark: {args.calls} calls each in {args.rounds} rounds,"
        f" {args.concurrency} in flight, {args.threads} threads, SELECT 1 on PostgreSQL"
    )
    asyncio.run(measure(dsn, args.calls, args.concurrency, args.threads, args.rounds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
