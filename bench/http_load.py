"""HTTP benchmark: `POST /v1/payments` on `paymend serve`, the fair floor and a bare insert.

What is measured
----------------
Four servers (bench/servers.py) run as subprocesses on free ports of 127.0.0.1, each
on a fresh database, first SQLite, then PostgreSQL when it is reachable:

* paymend, started as `paymend serve` (API and worker in one process) after
  `paymend db upgrade` and `paymend merchants create bench`, with one simulated channel
  that answers at once and always approves. Each request goes through the request guard
  (card-data check, trace context, request log), key authentication, the
  Idempotency-Key, `PaymentService.pay` (two transactions, outbox events); the worker
  relays the events meanwhile. Its JSON log goes to a file.
* the fair floor, bench/floor_app.py: the same FastAPI shape doing the least a correct
  payment needs - validate, authenticate, claim the key, payment + pending attempt +
  event before the call, the simulator's call, then outcome, events and the key's answer
  in a second transaction. paymend's figure against it is the cost of everything else.
  It runs twice: as `floor`, and as `floor-risk` with the least a risk decision before
  the call needs (the customer's day of decisions read, the decision stored).
* the bare insert, bench/baseline_app.py: validate and insert one row. Nothing that
  takes payments can be cheaper.

The figure that matters is the server's **CPU time per request** (user + system of the
server process, all threads, from /proc): on a machine shared with other work,
throughput and latency move with the neighbours, CPU per request hardly does. Ratios are
floor/paymend, so 1.0 means as cheap as the floor. Throughput and p50/p99 at the given
concurrency are reported too, and for paymend the responses that were not 201
`succeeded`. On PostgreSQL running on this machine, the CPU its backends spent for each
server's requests is reported too (bench/servers.py `BackendCpu`): the database is the
one resource all of a deployment's processes share, so what a payment costs it is the
figure that decides how far a deployment scales out. The servers are measured in one
run, after a warm-up, in turn: in each of `--rounds` rounds every server takes its share
of the requests while the others idle, so that a machine whose speed drifts during the
run (a neighbour's load) slows them alike. (Measured one after the other, the same code
gave SQLite ratios of 0.47, 0.65 and 0.62 in three runs on one busy machine.) On
PostgreSQL every database is analyzed once all are warmed up, as autovacuum analyzes one
that has served a while (bench/servers.py `Postgres.analyze`).

With `--rate R` the load is open, as a shop's traffic is: payments arrive at R a second
per server (Poisson, the same arrivals for every server), whether or not the earlier ones
are answered, over the same `--concurrency` connections, and each latency counts from
the moment its payment arrived, waiting for a free connection included. A closed load of
16 lanes keeps the server busy whatever its speed, so its p50 and p99 are mostly the
queue that 16 / throughput predicts (Little's law); an open load below capacity shows
the tail a payment meets at that rate, stalls included (no coordinated omission: a stall
delays every payment that arrives during it, and each is counted from its arrival).

    python bench/http_load.py [--requests 2000] [--rounds 5] [--concurrency 16]
        [--rate R] [--sqlite-only | --postgres-only] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from servers import (
    DEFAULT_PG_URL,
    BackendCpu,
    Paymend,
    Postgres,
    Server,
    start_baseline,
    total,
    wait_healthy,
)
from turns import in_turns

REQUEST_TIMEOUT_S = 30.0
DB_CPU = "db_cpu_ms_per_request"  # `DbRun.cpu_ratio` of the database's CPU
PHASE_DEADLINE_S = 300.0  # no phase may run longer than this, whatever --requests says


def payment_body(tag: str, i: int) -> dict[str, Any]:
    """The API's documented example payment, with a unique order id, from one of 500
    customers: the risk gate reads each customer's last 24 hours of payments, so one
    customer paying every request would measure a velocity attack, not a shop."""
    return {
        "amount": 1999,
        "currency": "CNY",
        "method": "card",
        "order_id": f"order-{tag}-{i:07d}",
        "bank": "ICBC",
        "region": "CN-East",
        "payment_token": "tok_from_provider_sdk",
        "customer": {"id": f"c-{i % 500:03d}", "locale": "zh-CN"},
        "metadata": {"cart": "cart-7f3a"},
    }


# -- load ---------------------------------------------------------------------------------


@dataclass
class Load:
    server: str
    requests: int
    concurrency: int
    rate: float | None  # offered payments a second (open load), None: closed
    seconds: float
    req_per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    statuses: dict[str, int]
    non_201: int
    not_succeeded: int
    client_cpu_pct: float
    server_cpu_pct: float | None
    server_cpu_ms_per_request: float | None
    db_cpu_ms_per_request: float | None = None  # PostgreSQL's backends (BackendCpu)
    client_late_ms: float = 0.0  # open load: the client's worst lag behind the arrivals


@dataclass
class Sample:
    """What one stretch of load on one server saw; a `Load` adds up its rounds."""

    latencies: list[float]
    statuses: Counter[str]
    not_succeeded: int
    seconds: float
    client_cpu: float
    server_cpu: float | None
    db_cpu: float | None = None
    late_s: float = 0.0  # open load: how far behind its arrivals the client ever fell


def arrival_offsets(rate: float, requests: int, seed: str) -> list[float]:
    """Seconds from the load's start at which each of `requests` payments arrives: a
    Poisson process of `rate` a second, the same for the same seed."""
    rng = random.Random(seed)
    offsets, t = [], 0.0
    for _ in range(requests):
        t += rng.expovariate(rate)
        offsets.append(t)
    return offsets


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, -(-len(sorted_values) * q // 100))
    return sorted_values[int(rank) - 1]


def combined(
    server: str, concurrency: int, samples: list[Sample], rate: float | None = None
) -> Load:
    """One server's rounds as one load: requests, seconds and CPU summed, latencies
    pooled."""
    latencies = sorted(t for s in samples for t in s.latencies)
    statuses: Counter[str] = Counter()
    for s in samples:
        statuses.update(s.statuses)
    requests = len(latencies)
    elapsed = sum(s.seconds for s in samples)
    server_cpu = total([s.server_cpu for s in samples])
    db_cpu = total([s.db_cpu for s in samples])
    return Load(
        server=server,
        requests=requests,
        concurrency=concurrency,
        rate=rate,
        seconds=round(elapsed, 3),
        req_per_s=round(requests / elapsed, 1),
        p50_ms=round(percentile(latencies, 50) * 1000, 2),
        p99_ms=round(percentile(latencies, 99) * 1000, 2),
        max_ms=round(latencies[-1] * 1000, 2),
        statuses=dict(statuses),
        non_201=requests - statuses.get("201", 0),
        not_succeeded=sum(s.not_succeeded for s in samples),
        client_cpu_pct=round(100 * sum(s.client_cpu for s in samples) / elapsed, 1),
        server_cpu_pct=None if server_cpu is None else round(100 * server_cpu / elapsed, 1),
        server_cpu_ms_per_request=(
            None if server_cpu is None else round(1000 * server_cpu / requests, 3)
        ),
        db_cpu_ms_per_request=None if db_cpu is None else round(1000 * db_cpu / requests, 3),
        client_late_ms=round(1000 * max(s.late_s for s in samples), 2),
    )


class LoadGenerator:
    """One httpx.AsyncClient per lane, each with one keep-alive connection; the lanes are
    shared out over `servers` (several API processes on one database) and the CPU of
    every process in `cpu_of` (default: the servers) is counted.

    (One client with a pool of 16 works too, but httpcore scans the whole pool on every
    request, which costs the client more CPU than the baseline server spends.)
    """

    def __init__(
        self, servers: list[Server], concurrency: int, cpu_of: list[Server] | None = None
    ) -> None:
        self.servers = servers
        self.cpu_of = cpu_of or servers
        self.name = "+".join(s.name for s in servers)
        self.clients = [
            httpx.AsyncClient(
                base_url=server.url,
                headers={"Content-Type": "application/json", **server.headers},
                timeout=REQUEST_TIMEOUT_S,
                limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
                trust_env=False,
            )
            for server in (servers[i % len(servers)] for i in range(concurrency))
        ]

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()

    def _cpu(self) -> float | None:
        return total([s.cpu() for s in self.cpu_of])

    def _db_cpu(self) -> float | None:
        """The CPU of the database the servers share (PostgreSQL on this machine only)."""
        reading = self.servers[0].database_cpu
        return None if reading is None else reading()

    async def drive(self, tag: str, requests: int) -> Load:
        """`requests` payments, all lanes busy, as one load."""
        return combined(self.name, len(self.clients), [await self.sample(tag, requests)])

    async def sample(self, tag: str, requests: int, rate: float | None = None) -> Sample:
        """`requests` payments (each tag a fresh set of keys and orders): with `rate`, an
        open load of `rate` arrivals a second, each timed from its arrival; without, all
        lanes busy, each timed from its send."""
        latencies: list[float] = []
        statuses: Counter[str] = Counter()
        not_succeeded = 0
        late = 0.0
        # (payment number, when it arrived); None: no more
        arrived: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()

        async def arrive(offsets: list[float], start: float) -> None:
            nonlocal late
            for i, offset in enumerate(offsets):
                at = start + offset
                wait = at - time.perf_counter()
                if wait > 0:
                    await asyncio.sleep(wait)
                late = max(late, time.perf_counter() - at)
                arrived.put_nowait((i, at))
            for _ in self.clients:
                arrived.put_nowait(None)

        async def lane(client: httpx.AsyncClient) -> None:
            nonlocal not_succeeded
            while (item := await arrived.get()) is not None:
                i, t0 = item
                headers = {"Idempotency-Key": f"bench-{tag}-{i:07d}"}
                body = json.dumps(payment_body(tag, i)).encode()
                if rate is None:
                    t0 = time.perf_counter()
                try:
                    resp = await client.post("/v1/payments", content=body, headers=headers)
                except httpx.HTTPError as exc:
                    latencies.append(time.perf_counter() - t0)
                    statuses[type(exc).__name__] += 1
                    not_succeeded += 1
                    continue
                latencies.append(time.perf_counter() - t0)
                statuses[str(resp.status_code)] += 1
                if resp.status_code != 201 or resp.json().get("status") != "succeeded":
                    not_succeeded += 1

        db_cpu0, server_cpu0 = self._db_cpu(), self._cpu()
        cpu0, start = time.process_time(), time.perf_counter()
        if rate is None:  # every payment there at the start, for the next free lane
            await arrive([0.0] * requests, start)
            tasks = [lane(c) for c in self.clients]
        else:
            offsets = arrival_offsets(rate, requests, tag)
            tasks = [arrive(offsets, start), *(lane(c) for c in self.clients)]
        await asyncio.wait_for(asyncio.gather(*tasks), PHASE_DEADLINE_S)
        elapsed = time.perf_counter() - start
        client_cpu = time.process_time() - cpu0
        server_cpu1, db_cpu1 = self._cpu(), self._db_cpu()
        server_cpu = db_cpu = None
        if server_cpu0 is not None and server_cpu1 is not None:
            server_cpu = server_cpu1 - server_cpu0
        if db_cpu0 is not None and db_cpu1 is not None:
            db_cpu = db_cpu1 - db_cpu0
        return Sample(
            latencies,
            statuses,
            not_succeeded,
            elapsed,
            client_cpu,
            server_cpu,
            db_cpu,
            late_s=0.0 if rate is None else late,
        )


# -- the run ------------------------------------------------------------------------------


def report(load: Load) -> None:
    cpu = "n/a"
    if load.server_cpu_pct is not None:
        cpu = f"{load.server_cpu_pct:.0f}% ({load.server_cpu_ms_per_request:.2f} ms/req)"
    if load.db_cpu_ms_per_request is not None:
        cpu += f", database {load.db_cpu_ms_per_request:.2f} ms/req"
    behind = "" if load.rate is None else f" (at most {load.client_late_ms:.1f} ms behind)"
    print(
        f"  {load.server:<9}{load.req_per_s:>8.1f} req/s  p50 {load.p50_ms:>6.2f} ms"
        f"  p99 {load.p99_ms:>6.2f} ms  cpu: server {cpu}, client {load.client_cpu_pct:.0f}%"
        f"{behind}  statuses {load.statuses}"
    )


@dataclass
class DbRun:
    """paymend, the fair floor and the bare insert on one kind of database."""

    database: str
    loads: dict[str, Load]

    def cpu_ratio(self, floor: str, of: str = "server_cpu_ms_per_request") -> float | None:
        """floor's CPU per request over paymend's: 1.0 is as cheap as the floor. `of`:
        the server's, or `db_cpu_ms_per_request`, the database's (PostgreSQL on this
        machine)."""
        ours, base = getattr(self.loads["paymend"], of), getattr(self.loads[floor], of)
        return round(base / ours, 3) if ours and base else None

    def p99_ratio(self, floor: str) -> float | None:
        """floor's p99 over paymend's, measured in this run: the tail paymend adds, on
        this machine. (A p99 in milliseconds says as much of the machine as of paymend:
        at concurrency 16 it is about 16 / throughput, and on a slow machine the bare
        insert's own p99 on PostgreSQL passes 50 ms.)"""
        ours, base = self.loads["paymend"].p99_ms, self.loads[floor].p99_ms
        return round(base / ours, 3) if ours and base else None

    def summary(self) -> dict[str, Any]:
        ours = self.loads["paymend"]
        return {
            "database": self.database,
            "loads": {k: asdict(v) for k, v in self.loads.items()},
            "cpu_ratio_fair_floor": self.cpu_ratio("floor"),
            "cpu_ratio_fair_floor_with_risk": self.cpu_ratio("floor-risk"),
            "cpu_ratio_bare_insert": self.cpu_ratio("baseline"),
            "db_cpu_ratio_fair_floor": self.cpu_ratio("floor", DB_CPU),
            "db_cpu_ratio_fair_floor_with_risk": self.cpu_ratio("floor-risk", DB_CPU),
            "paymend_p99_ms": ours.p99_ms,
            "p99_ratio_fair_floor": self.p99_ratio("floor"),
            "p99_ratio_fair_floor_with_risk": self.p99_ratio("floor-risk"),
            "paymend_ok": ours.non_201 == 0 and ours.not_succeeded == 0,
        }


async def _interleaved(
    servers: list[Server],
    requests: int,
    concurrency: int,
    warmup: int,
    rounds: int,
    warmed: Callable[[], None] | None = None,
    rate: float | None = None,
) -> dict[str, Load]:
    """Each server warmed up (then `warmed` called), then `rounds` rounds in which each
    server in turn takes its share of `requests` while the others idle (bench/turns.py),
    at `rate` arrivals a second (open load) or with every lane busy (None)."""
    gens = [LoadGenerator([server], concurrency) for server in servers]
    samples: dict[str, list[Sample]] = {server.name: [] for server in servers}
    try:
        for gen in gens:
            await gen.sample("warm", warmup)
        if warmed is not None:
            warmed()
        for r, i, share in in_turns(len(gens), requests, rounds):
            samples[gens[i].name].append(await gens[i].sample(f"run{r}", share, rate))
    finally:
        for gen in gens:
            await gen.aclose()
    return {
        server.name: combined(server.name, concurrency, samples[server.name], rate)
        for server in servers
    }


def run_database(
    database: str,
    urls: list[str],
    workdir: Path,
    requests: int,
    concurrency: int,
    warmup: int,
    rounds: int,
    warmed: Callable[[], None] | None = None,
    rate: float | None = None,
) -> DbRun:
    """Each server on its own fresh database (`urls`: paymend's, the floor's, the floor's
    with a risk decision, the bare insert's), measured in turn, in `rounds` rounds,
    while the others idle; `warmed` is called once all are warmed up."""
    servers: list[Server] = []
    try:
        names = ("paymend", "floor", "floor-risk", "baseline")
        dirs = [workdir / f"{database}-{n}" for n in names]
        for d in dirs:
            d.mkdir()
        servers.append(Paymend.prepare(dirs[0], urls[0]).start())
        servers.append(Paymend.prepare(dirs[1], urls[1]).start_floor())
        servers.append(Paymend.prepare(dirs[2], urls[2]).start_floor(risk=True))
        servers.append(start_baseline(dirs[3], urls[3]))
        for server, url in zip(servers, urls, strict=True):
            wait_healthy(server)
            if url.startswith("postgresql"):
                server.database_cpu = BackendCpu(url)
        return DbRun(
            database,
            asyncio.run(_interleaved(servers, requests, concurrency, warmup, rounds, warmed, rate)),
        )
    except Exception:
        for server in servers:
            print(f"--- {server.name} log ---\n{server.tail()}", file=sys.stderr)
        raise
    finally:
        for server in servers:
            server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--postgres-url", default=DEFAULT_PG_URL)
    parser.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="rounds in which each server takes its share of the requests in turn",
    )
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--sqlite-only", action="store_true")
    only.add_argument("--postgres-only", action="store_true")
    parser.add_argument(
        "--rate",
        type=float,
        help="an open load: payments arriving at this many a second per server (Poisson),"
        " each timed from its arrival; without it, every lane is kept busy",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if not 1 <= args.requests <= 200_000:
        parser.error("--requests must be 1..200000")
    if not 1 <= args.concurrency <= 256:
        parser.error("--concurrency must be 1..256")
    if not 1 <= args.rounds <= args.requests:
        parser.error("--rounds must be 1..--requests")
    if args.rate is not None and not 1 <= args.rate <= 10_000:
        parser.error("--rate must be 1..10000 payments a second")
    warmup = max(args.concurrency * 4, min(300, args.requests // 10))

    def say(message: str) -> None:
        print(message, file=sys.stderr if args.json else sys.stdout)

    # a SIGTERM unwinds like Ctrl-C, so the servers are stopped on the way out
    signal.signal(signal.SIGTERM, lambda _sig, _frame: sys.exit(143))
    offered = "" if args.rate is None else f", open load of {args.rate:g} payments/s"
    say(
        f"paymend HTTP benchmark: {args.requests} requests per server in {args.rounds}"
        f" rounds, concurrency {args.concurrency}{offered}, {warmup} warm-up,"
        f" {os.cpu_count()} CPUs, loopback"
    )
    runs: list[DbRun] = []
    skipped: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="paymend-http-bench-") as tmp:
        workdir = Path(tmp)

        def measure(
            database: str, urls: list[str], warmed: Callable[[], None] | None = None
        ) -> None:
            load = (args.requests, args.concurrency, warmup, args.rounds)
            runs.append(run_database(database, urls, workdir, *load, warmed, args.rate))

        try:
            names = ("paymend", "floor", "floor-risk", "base")
            if not args.postgres_only:
                measure("sqlite", [f"sqlite:///{workdir / f'{n}.db'}" for n in names])
            pg = Postgres(args.postgres_url, "http")
            reason = None if not args.sqlite_only else "--sqlite-only"
            reason = reason or pg.reachable()
            if reason is None:
                try:
                    measure("postgresql", [pg.fresh() for _ in names], pg.analyze)
                finally:
                    pg.drop_all()
            else:
                skipped["postgresql"] = reason
        except subprocess.CalledProcessError as exc:
            detail = (exc.stderr or b"").decode(errors="replace").strip()
            say(f"setup failed: {' '.join(map(str, exc.cmd))}\n{detail}")
            return 1
    ok = all(
        r.loads["paymend"].non_201 == 0 and r.loads["paymend"].not_succeeded == 0 for r in runs
    )
    if args.json:
        print(
            json.dumps(
                {
                    "requests": args.requests,
                    "concurrency": args.concurrency,
                    "rate": args.rate,
                    "warmup": warmup,
                    "runs": [r.summary() for r in runs],
                    "skipped": skipped,
                    "all_paymend_201_succeeded": ok,
                },
                indent=2,
            )
        )
        return 0 if ok else 1
    for run in runs:
        print(f"\n{run.database}")
        for load in run.loads.values():
            report(load)
        ours = run.loads["paymend"]
        at = "" if args.rate is None else f" at {args.rate:g} payments/s offered"
        print(
            f"  paymend CPU/request vs fair floor {run.cpu_ratio('floor')}"
            f" (target >= 0.8; with a risk decision {run.cpu_ratio('floor-risk')}),"
            f" vs bare insert {run.cpu_ratio('baseline')} (target >= 0.3);"
            f" p99 {ours.p99_ms:.1f} ms{at} (target < 50), fair floor's p99 over paymend's"
            f" {run.p99_ratio('floor')} (with a risk decision {run.p99_ratio('floor-risk')})"
        )
        database = run.cpu_ratio("floor", DB_CPU)
        if database is not None:
            print(
                f"  the database's CPU/request, fair floor / paymend {database}"
                f" (with a risk decision {run.cpu_ratio('floor-risk', DB_CPU)})"
            )
    for name, why in skipped.items():
        print(f"\n{name} skipped: {why}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
