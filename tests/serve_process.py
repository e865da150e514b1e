"""A real `paymend serve` (or `api`, `worker`) process for tests that signal or kill it.

The process gets its own database URL, config file and port through the environment and
the command line, exactly as an operator would start it; its output goes to a log file
the failing test names.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
import yaml

from paymend.store.database import Store
from tests import ports
from tests.helpers import make_merchant

START_S = 30.0  # bound on a process becoming ready (imports, migrations done before)


def free_port() -> int:
    return ports.free_port()


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def merchant_key(db_url: str) -> str:
    store = Store(db_url)
    try:
        return make_merchant(store)[1]
    finally:
        store.close()


def rows(db_url: str, query: Any) -> list[Any]:
    """What `query` finds in a real process's database, read on a connection of our own."""
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(query).all())
    finally:
        engine.dispose()


def until(what: str, check: Callable[[], Any], wait_s: float) -> Any:
    """Poll real processes' effects until `check` holds, for at most `wait_s`."""
    deadline = time.monotonic() + wait_s
    while not (found := check()):
        assert time.monotonic() < deadline, f"not within {wait_s}s: {what}"
        time.sleep(0.05)
    return found


class Paymend:
    """One paymend process. `command`: serve, api or worker."""

    def __init__(
        self, command: str, db_url: str, config: Path, log: Path, port: int | None = None
    ) -> None:
        self.command = command
        self.port = port
        self.url = f"http://127.0.0.1:{port}" if port else ""
        env = {
            **os.environ,
            "PAYMEND_DATABASE_URL": db_url,
            "PAYMEND_CONFIG": str(config),
            "PAYMEND_LOG_LEVEL": "INFO",
        }
        args = [sys.executable, "-m", "paymend.cli", command]
        if port is not None:
            args += ["--port", str(port)]
        self._log = log.open("ab")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(args, env=env, stdout=self._log, stderr=self._log)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self) -> float:
        """Until `/healthz` answers (a server) or the instance is registered (a worker
        has no port: the caller checks the database); seconds since start."""
        deadline = self.started + START_S
        while True:
            assert self.proc.poll() is None, f"{self.command} exited with {self.proc.returncode}"
            assert time.monotonic() < deadline, f"{self.command} not ready in {START_S}s"
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return time.monotonic() - self.started
            except httpx.TransportError:
                pass
            time.sleep(0.05)  # waiting on a real process to listen

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def terminate(self) -> float:
        """SIGTERM; returns when the signal is sent (time it with `wait`)."""
        self.proc.send_signal(signal.SIGTERM)
        return time.monotonic()

    def wait(self, timeout_s: float) -> int:
        return self.proc.wait(timeout=timeout_s)

    def close(self) -> None:
        """Never leave a process behind, whatever failed."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self._log.close()
