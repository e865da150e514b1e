"""Scale-out on PostgreSQL: does a second API process raise the CPU a payment costs?

Three phases on one fresh PostgreSQL database, with Redis for the shared health book as
a scaled-out deployment runs (`--no-redis` runs without it):

1. `paymend serve` alone (API and worker), 16 clients;
2. the same, 8 clients;
3. the same `paymend serve` plus a `paymend api` process, the 16 clients split over the
   two (8 each), the CPU of both processes counted.

A process's CPU per request depends on how busy it is: at 16 requests in flight its
event loop wakes once for several of them, at 8 more often for fewer (on this machine
a single process spends about 10% more per payment at 8 than at 16). So phase 3 is
compared with phase 2, the same load per process, for the cost the second process
adds to a payment; and with phase 1, the same total load, for the whole picture.

The figure is CPU time per payment (all threads of the paymend processes, from /proc),
phase 3 over phase 2: 1.0 is flat, above it each process added costs every payment
something (caches split, duplicate sweeps, lock waits). A process also spends
a little CPU while idle (its heartbeat every second, the worker's sweeps): that is
measured for a few seconds before each phase and reported apart, so the per-payment
figure (`net`) is what the payments cost, and the idle rate what a process costs. Throughput is
reported but cannot double on a 2-core machine that also runs the database, Redis and
the load generator: the second process only shows that the work is shared, not that
it is free. Also reported: p99 latency of each phase.

    python bench/scale_out.py [--requests 2000] [--postgres-url URL] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import redis

from http_load import Load, LoadGenerator
from servers import DEFAULT_PG_URL, Paymend, Postgres, Server, wait_healthy

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/11"
FLAT = 1.10  # phase 2's CPU per payment at most this much above phase 1's


IDLE_S = 4.0


@dataclass
class Phase:
    load: Load
    idle_cpu_pct: float  # all processes together, between requests
    net_cpu_ms: float  # per payment, the idle rate taken out


def _cpu(servers: list[Server]) -> float:
    return sum(s.cpu() or 0.0 for s in servers)


async def phase(
    servers: list[Server],
    tag: str,
    requests: int,
    concurrency: int,
    warmed: Callable[[], None] | None = None,
) -> Phase:
    """One measured load after a warm-up (then `warmed` is called)."""
    gen = LoadGenerator(servers, concurrency)
    try:
        await gen.drive(f"{tag}-warm", max(concurrency * 8, requests // 10))
        if warmed is not None:
            warmed()
        before = _cpu(servers)
        await asyncio.sleep(IDLE_S)
        idle = (_cpu(servers) - before) / IDLE_S
        load = await gen.drive(tag, requests)
    finally:
        await gen.aclose()
    spent = (load.server_cpu_ms_per_request or 0.0) * requests / 1000
    net = max(0.0, spent - idle * load.seconds) * 1000 / requests
    return Phase(load, round(100 * idle, 1), round(net, 3))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--postgres-url", default=DEFAULT_PG_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument("--no-redis", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    pg = Postgres(args.postgres_url, "scale")
    reason = pg.reachable()
    if reason is not None:
        print(f"postgresql unreachable: {reason}", file=sys.stderr)
        return 1
    redis_url = None if args.no_redis else args.redis_url
    if redis_url is not None:
        redis.Redis.from_url(redis_url).ping()
    servers: list[Server] = []
    with tempfile.TemporaryDirectory(prefix="paymend-scale-bench-") as tmp:
        try:
            paymend = Paymend.prepare(Path(tmp), pg.fresh(), redis_url)
            serve = paymend.start("serve", "serve")
            servers.append(serve)
            wait_healthy(serve)
            # planner statistics once the first warm-up wrote rows: every phase is
            # measured on the database as it stands after serving (Postgres.analyze)
            one = asyncio.run(phase([serve], "one", args.requests, args.concurrency, pg.analyze))
            half = args.concurrency // 2
            one_half = asyncio.run(phase([serve], "half", args.requests, half))
            api = paymend.start("api", "api")
            servers.append(api)
            wait_healthy(api)
            two = asyncio.run(phase([serve, api], "two", args.requests, args.concurrency))
        finally:
            for server in servers:
                server.stop()
            pg.drop_all()
    same_total = round(two.net_cpu_ms / one.net_cpu_ms, 3)
    same_load = round(two.net_cpu_ms / one_half.net_cpu_ms, 3)
    failed = sum(p.load.not_succeeded for p in (one, one_half, two))
    ok = same_load <= FLAT and failed == 0
    if args.json:
        out: dict[str, object] = {"one": asdict(one), "one_half": asdict(one_half)}
        out.update(two=asdict(two), cpu_ratio_same_load=same_load)
        out.update(cpu_ratio_same_total=same_total)
        print(json.dumps(out, indent=2))
        return 0 if ok else 1
    rows = (
        (f"serve, {args.concurrency} clients", one),
        (f"serve, {half} clients", one_half),
        (f"serve + api, {half} each", two),
    )
    for name, p in rows:
        print(
            f"  {name:<24}{p.load.req_per_s:>7.1f} payments/s  p99 {p.load.p99_ms:>7.1f} ms"
            f"  CPU {p.load.server_cpu_ms_per_request:.2f} ms/payment, net of idle"
            f" {p.net_cpu_ms:.2f}; idle {p.idle_cpu_pct:.1f}% of a core"
        )
    print(
        f"SUMMARY net CPU per payment, serve + api over serve alone: x{same_load} at the same"
        f" load per process ({half} clients each; flat: <= {FLAT}, {'met' if ok else 'NOT met'}),"
        f" x{same_total} at the same total ({args.concurrency} clients);"
        f" Redis {'on' if redis_url else 'off'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
