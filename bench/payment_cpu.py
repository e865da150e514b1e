"""CPU per payment of paymend's app and the fair floor's, in this one process, no HTTP.

bench/http_load.py is the benchmark of record: real servers, real sockets. This is the
tool for finding where paymend's cost is and for weighing one change: both ASGI apps
(`paymend serve`'s, worker included, and bench/floor_app.py's, with and without its risk
decision: `floor` and `floor-risk`) are built here on fresh databases made by `paymend
db upgrade`, and `POST /v1/payments` requests are handed to them as ASGI calls, 16 in
flight, so neither the server's socket work nor a client's is counted. The figure is
this process's CPU time per request (all threads), each app measured after a warm-up
(with `--postgres` on this machine, also the CPU of the database's backends,
bench/servers.py `BackendCpu`); `--profile FILE` writes paymend's cProfile (CPU time of
the event loop's thread; with `--only`, that app's) for `python -m pstats FILE`.

CPU time on a shared machine moves by 10% from run to run. For a count that does not,
run one app under callgrind, which counts instructions only while the measured
requests run (about a minute for 100 requests; `--no-worker` leaves paymend's worker
out, whose sweeps follow the wall clock; each app's collector is set as `paymend serve`
sets it, `spare_collector()`: start-up frozen, young collections rare;
paymend's clock moves 1 ms per request, `PacedClock`, so that what expires by time,
such as the ops-controls cache, expires as often however slowly valgrind runs):

    python bench/payment_cpu.py [--requests 2000] [--postgres] [--profile paymend.prof]
        [--only paymend] [--no-worker] [--commits]
    PAYMEND_CALLGRIND=1 valgrind --tool=callgrind --instr-atstart=no \
        python bench/payment_cpu.py --requests 100 --only paymend --no-worker

(bench/instructions.py runs that for paymend and both floors and prints the ratios.)
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from floor_app import create_app as create_floor
from http_load import payment_body, percentile
from servers import DEFAULT_PG_URL, BackendCpu, Paymend, Postgres

App = Callable[..., Any]
PACE_S = 0.001  # PacedClock: the time one request takes, as paymend's clock sees it


class PacedClock:
    """paymend's clock under callgrind: time moves PACE_S per request sent, not with the
    wall clock, so an instruction count does not grow with valgrind's slowness through
    caches that expire by time (ops controls, API keys). Waits are real."""

    def __init__(self) -> None:
        self._epoch = datetime.now(UTC)
        self._t = 0.0

    def tick(self) -> None:
        self._t += PACE_S

    def now(self) -> datetime:
        return self._epoch + timedelta(seconds=self._t)

    def monotonic(self) -> float:
        return self._t

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


async def _call(app: App, headers: list[tuple[bytes, bytes]], body: bytes) -> int:
    """One POST /v1/payments through the ASGI app; its status."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/payments",
        "raw_path": b"/v1/payments",
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def drive(
    app: App,
    key: str,
    tag: str,
    requests: int,
    concurrency: int,
    settle_s: float = 0.0,
    clock: PacedClock | None = None,
) -> float:
    """CPU seconds per request of `requests` payments, `concurrency` in flight."""
    numbers = iter(range(requests))
    statuses: dict[int, int] = {}

    async def lane() -> None:
        for i in numbers:
            headers = [
                (b"host", b"127.0.0.1"),
                (b"content-type", b"application/json"),
                (b"authorization", f"Bearer {key}".encode()),
                (b"idempotency-key", f"cpu-{tag}-{i:07d}".encode()),
            ]
            body = json.dumps(payment_body(tag, i)).encode()
            if clock is not None:
                clock.tick()
            status = await _call(app, headers, body)
            statuses[status] = statuses.get(status, 0) + 1
            # a server waits on its sockets between requests: there the worker runs and
            # the other requests in flight take their turns
            await asyncio.sleep(0)

    cpu0 = time.process_time()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    await asyncio.sleep(settle_s)  # the worker relays what the requests left in the outbox
    used = time.process_time() - cpu0
    if set(statuses) != {201}:
        raise RuntimeError(f"{tag}: statuses {statuses}")
    return used / requests


@dataclass(frozen=True)
class Measured:
    """CPU seconds per request: this process's, and PostgreSQL's backends' (None: not
    read, or not on this machine)."""

    cpu: float
    database: float | None = None


async def measure(
    app: App,
    key: str,
    name: str,
    requests: int,
    warmup: int,
    profile: str | None,
    settle_s: float = 1.5,
    clock: PacedClock | None = None,
    warmed: Callable[[], None] | None = None,
    database: BackendCpu | None = None,
) -> Measured:
    """Run the app's lifespan (paymend's worker with it), warm up (then call `warmed`),
    then measure (with `database`, PostgreSQL's CPU too)."""
    events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await events.put({"type": "lifespan.startup"})
    started = asyncio.Event()

    async def receive() -> dict[str, Any]:
        return await events.get()

    async def send(message: dict[str, Any]) -> None:
        if message["type"].startswith("lifespan.startup"):
            started.set()

    life = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send))
    await started.wait()
    try:
        await drive(app, key, f"{name}-warm", warmup, 16, settle_s=1.5, clock=clock)
        if warmed is not None:
            warmed()
        prof = cProfile.Profile(time.thread_time) if profile else None
        if prof is not None:
            prof.enable()
        db0 = database() if database is not None else None
        _callgrind("on")
        per_request = await drive(app, key, name, requests, 16, settle_s=settle_s, clock=clock)
        _callgrind("off")
        db1 = database() if database is not None else None
        if prof is not None and profile is not None:
            prof.disable()
            prof.dump_stats(profile)
        db = None if db0 is None or db1 is None else (db1 - db0) / requests
        return Measured(per_request, db)
    finally:
        await events.put({"type": "lifespan.shutdown"})
        await life


def _callgrind(switch: str) -> None:
    """Under `valgrind --tool=callgrind --instr-atstart=no`, count instructions only
    while the measured requests run (PAYMEND_CALLGRIND=1): a count that does not move
    with the neighbours' load."""
    if os.environ.get("PAYMEND_CALLGRIND"):
        subprocess.run(["callgrind_control", "-i", switch, str(os.getpid())], check=True)


def _time_commits() -> list[float]:
    """Every commit's duration from here on, warm-up included: on SQLite a commit runs on
    the event loop, and one that also checkpoints the log stops every request in flight."""
    from sqlalchemy.engine.default import DefaultDialect

    durations: list[float] = []
    commit: Callable[[DefaultDialect, Any], None] = DefaultDialect.do_commit

    def timed(self: DefaultDialect, dbapi_connection: Any) -> None:
        start = time.perf_counter()
        commit(self, dbapi_connection)
        durations.append(time.perf_counter() - start)

    DefaultDialect.do_commit = timed  # type: ignore[method-assign]
    return durations


def _print_commits(durations: list[float]) -> None:
    ms = sorted(d * 1000 for d in durations)
    slow = [d for d in ms if d > 2]
    quantiles = "  ".join(f"p{q} {percentile(ms, q):.2f}" for q in (50, 90, 99))
    print(f"commits    {len(ms)}, {sum(ms):.0f} ms in all; ms: {quantiles}  max {ms[-1]:.2f}")
    print(f"           over 2 ms: {len(slow)}, {sum(slow):.0f} ms in all")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL, not SQLite")
    parser.add_argument("--postgres-url", default=DEFAULT_PG_URL)
    parser.add_argument("--profile", help="write paymend's cProfile here (with --only, that app's)")
    parser.add_argument("--only", choices=("paymend", "floor", "floor-risk"))
    parser.add_argument(
        "--no-worker",
        action="store_true",
        help="paymend without its worker: the request path alone, for exact comparisons",
    )
    parser.add_argument(
        "--commits",
        action="store_true",
        help="time every commit (SQLAlchemy's do_commit) and print how long they took",
    )
    args = parser.parse_args()
    warmup = max(64, args.requests // 10)
    commits = _time_commits() if args.commits else None

    from paymend.api.app import create_app
    from paymend.config import Settings
    from paymend.engine.collector import spare_collector
    from paymend.engine.runtime import build_runtime
    from paymend.observability import configure_logging

    with tempfile.TemporaryDirectory(prefix="paymend-cpu-") as tmp:
        work = Path(tmp)
        pg = Postgres(args.postgres_url, "cpu") if args.postgres else None
        try:
            names = ("paymend", "floor", "floor-risk")
            urls = [pg.fresh() for _ in names] if pg else []
            if not urls:
                urls = [f"sqlite:///{work / n}.db" for n in names]
            dirs = [work / n for n in names]
            for d in dirs:
                d.mkdir()
            ours, floor, floor_risk = (
                Paymend.prepare(d, u) for d, u in zip(dirs, urls, strict=True)
            )
            results: dict[str, Measured] = {}
            warmed = pg.analyze if pg is not None else None  # see Postgres.analyze
            with open(os.devnull, "w") as devnull:
                configure_logging("INFO", devnull)
                if args.only in (None, "paymend"):
                    os.environ.update(ours.env)
                    paced = PacedClock() if os.environ.get("PAYMEND_CALLGRIND") else None
                    runtime = build_runtime(Settings(), clock=paced, role="serve")
                    try:
                        app = create_app(runtime, run_worker=not args.no_worker)
                        spare_collector()  # as `paymend serve` does once started
                        results["paymend"] = asyncio.run(
                            measure(
                                app,
                                ours.key,
                                "paymend",
                                args.requests,
                                warmup,
                                args.profile,
                                0.0 if args.no_worker else 1.5,
                                paced,
                                warmed,
                                BackendCpu(urls[0]) if pg is not None else None,
                            )
                        )
                    finally:
                        runtime.close()
                for name, base, risk in (("floor", floor, False), ("floor-risk", floor_risk, True)):
                    if args.only not in (None, name):
                        continue
                    floor_app = create_floor(base.url, base.env["PAYMEND_CONFIG"], risk=risk)
                    spare_collector()  # served as paymend is (floor_app.py's `main`)
                    results[name] = asyncio.run(
                        measure(
                            floor_app,
                            base.key,
                            name,
                            args.requests,
                            warmup,
                            args.profile if args.only == name else None,
                            0.0,
                            warmed=warmed,
                            database=BackendCpu(base.url) if pg is not None else None,
                        )
                    )
        finally:
            if pg is not None:
                pg.drop_all()
    for name, got in results.items():
        db = "" if got.database is None else f", the database {got.database * 1000:6.3f} ms"
        print(f"{name:<10} {got.cpu * 1000:6.3f} ms CPU/request{db}")
    if commits:
        _print_commits(commits)
    for name in ("floor", "floor-risk"):
        if name in results and "paymend" in results:
            print(f"{name}/paymend {results[name].cpu / results['paymend'].cpu:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
