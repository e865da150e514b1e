"""Servers for the HTTP benchmarks: paymend, the fair floor and the bare baseline, each a
subprocess on 127.0.0.1 on a free port, with its CPU time read from /proc.

Used by bench/http_load.py (CPU per request against the floors), bench/event_lag.py
(how far the outbox relay lags at full speed) and bench/scale_out.py (a second
`paymend api` process on PostgreSQL).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

HOST = "127.0.0.1"
BENCH_DIR = Path(__file__).resolve().parent
START_TIMEOUT_S = 30.0
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"

CONFIG = """\
# paymend's HTTP benchmarks: one simulated channel with no latency and no faults
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


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process, all its threads (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def total(seconds: list[float | None]) -> float | None:
    """The sum of CPU readings, or None if any is unknown (a process not on this
    machine)."""
    return None if None in seconds else sum(s for s in seconds if s is not None)


class BackendCpu:
    """CPU seconds of the PostgreSQL backends connected to one database, when the server
    runs on this machine (their /proc entries; else None): what a request costs the
    database server, the resource every process of a deployment shares.

    Read as a sum over the backends connected at each reading, so the difference of
    two readings counts a backend that connected in between whole and one that left in
    between not at all; the servers measured keep their pooled connections open."""

    def __init__(self, url: str) -> None:
        self.engine = sa.create_engine(url, poolclass=NullPool)
        self.name = make_url(url).database

    def __call__(self) -> float | None:
        with self.engine.connect() as conn:
            pids = conn.execute(
                sa.text(
                    "SELECT pid FROM pg_stat_activity"
                    " WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": self.name},
            ).scalars()
            used = [cpu_seconds(pid) for pid in pids]
        return total(used) if used else None


@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    headers: dict[str, str] = field(default_factory=dict)
    database_cpu: BackendCpu | None = None  # PostgreSQL: its database's backends

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def cpu(self) -> float | None:
        return cpu_seconds(self.proc.pid)

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


def start(name: str, argv: list[str], env: dict[str, str], workdir: Path, port: int) -> Server:
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


@dataclass
class Paymend:
    """A migrated paymend database with a merchant, and how to start processes on it."""

    workdir: Path
    url: str
    env: dict[str, str]
    key: str

    @classmethod
    def prepare(cls, workdir: Path, url: str, redis_url: str | None = None) -> Paymend:
        config = workdir / "bench.yaml"
        config.write_text(CONFIG)
        env = dict(os.environ)
        env.update(PAYMEND_DATABASE_URL=url, PAYMEND_CONFIG=str(config))
        env.pop("PAYMEND_REDIS_URL", None)
        if redis_url:
            env["PAYMEND_REDIS_URL"] = redis_url
        cmd = paymend_bin()

        def run(*args: str) -> subprocess.CompletedProcess[bytes]:
            return subprocess.run(
                [cmd, *args], cwd=workdir, env=env, capture_output=True, timeout=60, check=True
            )

        run("config", "check", str(config))
        run("db", "upgrade")
        key = run("merchants", "create", "bench").stdout.decode().strip().splitlines()[-1]
        if not key.startswith("sk_"):
            raise RuntimeError(f"unexpected output of paymend merchants create: {key!r}")
        return cls(workdir, url, env, key)

    def start(self, command: str = "serve", name: str = "paymend") -> Server:
        port = free_port()
        argv = [paymend_bin(), command, "--host", HOST, "--port", str(port)]
        server = start(name, argv, self.env, self.workdir, port)
        server.headers = {"Authorization": f"Bearer {self.key}"}
        return server

    def start_floor(self, risk: bool = False) -> Server:
        """The fair floor (bench/floor_app.py) on this same kind of database; with `risk`
        its risk decision too, named `floor-risk`."""
        port = free_port()
        argv = [
            sys.executable,
            str(BENCH_DIR / "floor_app.py"),
            "--port",
            str(port),
            "--database-url",
            self.url,
            "--config",
            self.env["PAYMEND_CONFIG"],
            *(["--risk"] if risk else []),
        ]
        server = start("floor-risk" if risk else "floor", argv, self.env, self.workdir, port)
        server.headers = {"Authorization": f"Bearer {self.key}"}
        return server


def start_baseline(workdir: Path, url: str) -> Server:
    port = free_port()
    argv = [
        sys.executable,
        str(BENCH_DIR / "baseline_app.py"),
        "--port",
        str(port),
        "--database-url",
        url,
    ]
    return start("baseline", argv, dict(os.environ), workdir, port)


class Postgres:
    """Fresh databases named `paymend_<bench>_<n>` on one server, dropped at the end."""

    def __init__(self, url: str, bench: str) -> None:
        self.base = url
        self.bench = bench
        self.made: list[str] = []
        self.admin = sa.create_engine(
            url,
            isolation_level="AUTOCOMMIT",
            poolclass=NullPool,
            connect_args={"connect_timeout": 5},
        )

    def reachable(self) -> str | None:
        try:
            with self.admin.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except Exception as exc:  # noqa: BLE001 - any driver error means "skip"
            return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}"
        return None

    def fresh(self) -> str:
        name = f"paymend_{self.bench}_{len(self.made)}"
        with self.admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        self.made.append(name)
        return make_url(self.base).set(database=name).render_as_string(hide_password=False)

    def analyze(self) -> None:
        """ANALYZE each database made: the planner statistics autovacuum keeps on a
        database that has served a while. A fresh one has none until autovacuum's first
        visit (a minute or more), and plans a join or an aggregate by guesses: paymend's
        risk read then scanned every payment of the merchant, 2.2 ms of the server's
        time at 2,200 payments, growing with each. A benchmark run is shorter than that
        minute; it is measured on the database as it stands once it has served."""
        for name in self.made:
            url = make_url(self.base).set(database=name)
            engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
            try:
                with engine.connect() as conn:
                    conn.execute(sa.text("ANALYZE"))
            finally:
                engine.dispose()

    def drop_all(self) -> None:
        with self.admin.connect() as conn:
            for name in self.made:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.admin.dispose()
