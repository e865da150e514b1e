"""HTTP benchmark: `POST /v1/payments` on a real `paymend serve`, against a bare baseline.

What is measured
----------------
Two servers run as subprocesses on 127.0.0.1, each on a fresh SQLite database:

* paymend, started as `paymend serve` (API and worker in one process, uvicorn, one
  worker) after `paymend db upgrade` and `paymend merchants create bench`, with a config
  of one simulated channel that answers at once and always approves (latency 0, success
  rate 1, no timeouts, errors or lost responses). Each request goes through the request
  guard (card-data check, tracing, request log), API-key authentication, the
  idempotency-key claim, `PaymentService.pay` (two transactions, outbox events) and the
  idempotency-key completion. Its JSON log goes to a file, as a deployment writes it
  somewhere.
* the baseline, bench/baseline_app.py: a bare FastAPI app that parses the same JSON body
  into an equivalent Pydantic model, inserts one row with SQLAlchemy Core into a SQLite
  table set up like paymend's (WAL, synchronous=NORMAL, one connection) and commits,
  served by `uvicorn.run` exactly as `paymend serve` does it.

With the provider's latency at zero, the difference is paymend's own cost per request.
The baseline is the cheapest honest way to accept a payment request and keep it, so
paymend/baseline says how much of that ceiling paymend keeps.

The load generator is one `httpx.AsyncClient` in this process (keep-alive connections,
loopback only) sending requests with a unique Idempotency-Key and order_id each, at a
fixed concurrency, after a warm-up of each server. It reports throughput, p50 and p99
latency, the CPU used by the client and by each server (so a saturated client is visible:
on a small machine the client competes with the server for cores), and for paymend the
count of responses that were not 201 with status `succeeded`. Both subprocesses are
stopped at the end, also on error.

    python bench/http_load.py [--requests 2000] [--concurrency 16] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

HOST = "127.0.0.1"
BENCH_DIR = Path(__file__).resolve().parent
START_TIMEOUT_S = 30.0
REQUEST_TIMEOUT_S = 30.0
PHASE_DEADLINE_S = 300.0  # no phase may run longer than this, whatever --requests says

CONFIG = """\
# bench/http_load.py: one simulated channel with no latency and no faults
seed: 1
providers:
  sim:
    type: simulator
    methods: [card]
    success_rate: 1.0
    authentication_rate: 0
    latency_ms: {p50: 0, p99: 0}
    timeout_rate: 0
    charged_on_timeout: 0
    lost_response_rate: 0
    error_rate: 0
routing: [sim]
engine:
  provider_timeout: 10s
worker:
  interval: 1s
  orphaned_pending_after: 60s
"""


def payment_body(tag: str, i: int) -> dict[str, Any]:
    """The API's documented example payment, with a unique order id."""
    return {
        "amount": 1999,
        "currency": "CNY",
        "method": "card",
        "order_id": f"order-{tag}-{i:07d}",
        "bank": "ICBC",
        "region": "CN-East",
        "payment_token": "tok_from_provider_sdk",
        "customer": {"id": "c-42", "locale": "zh-CN"},
        "metadata": {"cart": "cart-7f3a"},
    }


# -- servers ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process (Linux /proc), None where unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def start(name: str, argv: list[str], port: int, env: dict[str, str], workdir: Path) -> Server:
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv,
            cwd=workdir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    return Server(name, port, proc, log)


def wait_healthy(server: Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    with httpx.Client(base_url=server.url, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if server.proc.poll() is not None:
                raise RuntimeError(
                    f"{server.name} exited with {server.proc.returncode}:\n{server.tail()}"
                )
            with contextlib.suppress(httpx.TransportError):
                if client.get("/healthz").status_code == 200:
                    return
            time.sleep(0.1)
    raise RuntimeError(f"{server.name} not healthy after {START_TIMEOUT_S:g}s:\n{server.tail()}")


def paymend_bin() -> str:
    candidate = Path(sys.executable).with_name("paymend")
    if not candidate.exists():
        raise RuntimeError(f"no paymend command beside {sys.executable}; run with .venv/bin/python")
    return str(candidate)


def start_paymend(workdir: Path) -> Server:
    db = workdir / "paymend.db"
    config = workdir / "bench.yaml"
    config.write_text(CONFIG)
    env = dict(os.environ)
    env.update(PAYMEND_DATABASE_URL=f"sqlite:///{db}", PAYMEND_CONFIG=str(config))
    env.pop("PAYMEND_REDIS_URL", None)
    cmd = paymend_bin()

    def run(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [cmd, *args], cwd=workdir, env=env, capture_output=True, timeout=60, check=True
        )

    run("config", "check", str(config))
    run("db", "upgrade")
    created = run("merchants", "create", "bench")
    key = created.stdout.decode().strip().splitlines()[-1]
    if not key.startswith("sk_"):
        raise RuntimeError(f"unexpected output of paymend merchants create: {created.stdout!r}")
    port = free_port()
    server = start(
        "paymend", [cmd, "serve", "--host", HOST, "--port", str(port)], port, env, workdir
    )
    server.headers = {"Authorization": f"Bearer {key}"}
    return server


def start_baseline(workdir: Path) -> Server:
    port = free_port()
    argv = [
        sys.executable,
        str(BENCH_DIR / "baseline_app.py"),
        "--port",
        str(port),
        "--database-url",
        f"sqlite:///{workdir / 'baseline.db'}",
    ]
    return start("baseline", argv, port, dict(os.environ), workdir)


# -- load ---------------------------------------------------------------------------------


@dataclass
class Load:
    server: str
    requests: int
    concurrency: int
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


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, -(-len(sorted_values) * q // 100))
    return sorted_values[int(rank) - 1]


class LoadGenerator:
    """One httpx.AsyncClient per lane, each with one keep-alive connection.

    (One client with a pool of 16 works too, but httpcore scans the whole pool on every
    request, which costs the client more CPU than the baseline server spends.)
    """

    def __init__(self, server: Server, concurrency: int) -> None:
        self.server = server
        headers = {"Content-Type": "application/json", **server.headers}
        self.clients = [
            httpx.AsyncClient(
                base_url=server.url,
                headers=headers,
                timeout=REQUEST_TIMEOUT_S,
                limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
                trust_env=False,
            )
            for _ in range(concurrency)
        ]

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()

    async def drive(self, tag: str, requests: int) -> Load:
        server, concurrency = self.server, len(self.clients)
        latencies: list[float] = []
        statuses: Counter[str] = Counter()
        not_succeeded = 0
        numbers: Iterator[int] = iter(range(requests))

        async def lane(client: httpx.AsyncClient) -> None:
            nonlocal not_succeeded
            for i in numbers:
                headers = {"Idempotency-Key": f"bench-{tag}-{i:07d}"}
                body = json.dumps(payment_body(tag, i)).encode()
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

        server_cpu0 = cpu_seconds(server.proc.pid)
        cpu0, start = time.process_time(), time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*(lane(c) for c in self.clients)), PHASE_DEADLINE_S)
        elapsed = time.perf_counter() - start
        client_cpu = time.process_time() - cpu0
        server_cpu1 = cpu_seconds(server.proc.pid)
        latencies.sort()
        server_cpu_pct = server_cpu_ms = None
        if server_cpu0 is not None and server_cpu1 is not None:
            server_cpu_pct = round(100 * (server_cpu1 - server_cpu0) / elapsed, 1)
            server_cpu_ms = round(1000 * (server_cpu1 - server_cpu0) / requests, 3)
        return Load(
            server=server.name,
            requests=requests,
            concurrency=concurrency,
            seconds=round(elapsed, 3),
            req_per_s=round(requests / elapsed, 1),
            p50_ms=round(percentile(latencies, 50) * 1000, 2),
            p99_ms=round(percentile(latencies, 99) * 1000, 2),
            max_ms=round(latencies[-1] * 1000, 2),
            statuses=dict(statuses),
            non_201=requests - statuses.get("201", 0),
            not_succeeded=not_succeeded,
            client_cpu_pct=round(100 * client_cpu / elapsed, 1),
            server_cpu_pct=server_cpu_pct,
            server_cpu_ms_per_request=server_cpu_ms,
        )


# -- the run ------------------------------------------------------------------------------


def report(load: Load) -> None:
    cpu = "n/a"
    if load.server_cpu_pct is not None:
        cpu = f"{load.server_cpu_pct:.0f}% ({load.server_cpu_ms_per_request:.2f} ms/req)"
    print(
        f"  {load.server:<9}{load.req_per_s:>8.1f} req/s  p50 {load.p50_ms:>6.2f} ms"
        f"  p99 {load.p99_ms:>6.2f} ms  max {load.max_ms:>6.2f} ms"
        f"  cpu: server {cpu}, client {load.client_cpu_pct:.0f}%"
        f"  statuses {load.statuses}"
    )
    if load.client_cpu_pct >= 90:
        print(
            f"  note: the client used {load.client_cpu_pct:.0f}% of a core: {load.server}'s"
            " figure is a lower bound (the load generator was the limit)"
        )


async def measure(
    paymend: Server, baseline: Server, requests: int, concurrency: int, warmup: int
) -> list[Load]:
    generators = [LoadGenerator(paymend, concurrency), LoadGenerator(baseline, concurrency)]
    try:
        for gen in generators:
            await gen.drive("warm", warmup)
        return [await gen.drive("run", requests) for gen in generators]
    finally:
        for gen in generators:
            await gen.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if not 1 <= args.requests <= 200_000:
        parser.error("--requests must be 1..200000")
    if not 1 <= args.concurrency <= 256:
        parser.error("--concurrency must be 1..256")
    warmup = max(args.concurrency * 4, min(300, args.requests // 10))

    def say(message: str) -> None:
        print(message, file=sys.stderr if args.json else sys.stdout)

    # a SIGTERM unwinds like Ctrl-C, so the servers are stopped on the way out
    signal.signal(signal.SIGTERM, lambda _sig, _frame: sys.exit(143))
    say(
        f"paymend HTTP benchmark: {args.requests} requests per server, concurrency"
        f" {args.concurrency}, {warmup} warm-up, {os.cpu_count()} CPUs, loopback"
    )
    servers: list[Server] = []
    with tempfile.TemporaryDirectory(prefix="paymend-http-bench-") as tmp:
        workdir = Path(tmp)
        try:
            paymend = start_paymend(workdir)
            servers.append(paymend)
            baseline = start_baseline(workdir)
            servers.append(baseline)
            for server in servers:
                wait_healthy(server)
            loads = asyncio.run(measure(paymend, baseline, args.requests, args.concurrency, warmup))
        except subprocess.CalledProcessError as exc:
            detail = (exc.stderr or b"").decode(errors="replace").strip()
            say(f"setup failed: {' '.join(map(str, exc.cmd))}\n{detail}")
            return 1
        except Exception:
            for server in servers:
                say(f"--- {server.name} log ---\n{server.tail()}")
            raise
        finally:
            for server in servers:
                server.stop()
    ours, base = loads
    ratio = round(ours.req_per_s / base.req_per_s, 3)
    latency_ratio = round(ours.p99_ms / base.p99_ms, 2)
    cpu_ratio = None
    if ours.server_cpu_ms_per_request and base.server_cpu_ms_per_request:
        cpu_ratio = round(base.server_cpu_ms_per_request / ours.server_cpu_ms_per_request, 3)
    ok = ours.non_201 == 0 and ours.not_succeeded == 0
    if args.json:
        print(
            json.dumps(
                {
                    "requests": args.requests,
                    "concurrency": args.concurrency,
                    "warmup": warmup,
                    "paymend": asdict(ours),
                    "baseline": asdict(base),
                    "throughput_ratio": ratio,
                    "p99_ratio": latency_ratio,
                    "cpu_per_request_ratio": cpu_ratio,
                    "paymend_non_201": ours.non_201,
                    "all_paymend_201_succeeded": ok,
                },
                indent=2,
            )
        )
        return 0 if ok else 1
    report(ours)
    report(base)
    cpu_text = "" if cpu_ratio is None else f"; server CPU per request ratio {cpu_ratio:.2f}"
    print(
        f"\nSUMMARY paymend/baseline throughput {ratio:.2f}"
        f" ({ours.req_per_s:.0f} vs {base.req_per_s:.0f} req/s{cpu_text});"
        f" p99 {ours.p99_ms:.1f} ms vs {base.p99_ms:.1f} ms;"
        f" paymend non-201: {ours.non_201}, 201 but not succeeded:"
        f" {ours.not_succeeded - ours.non_201}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
