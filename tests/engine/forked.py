"""Driver processes forked by `crash_forks`, handled as `subprocess.Popen` handles its
processes (the part of its interface the crash test uses)."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from types import TracebackType
from typing import TextIO

ROOT = Path(__file__).resolve().parents[2]


class Forks:
    """One `crash_forks` parent for a test; `start` forks a driver from it."""

    def __init__(self) -> None:
        self._runs, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.engine.crash_forks", str(theirs.fileno())],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            pass_fds=[theirs.fileno()],
            text=True,
        )
        theirs.close()
        self._started: queue.Queue[int] = queue.Queue()
        self._exits: dict[int, int] = {}
        self._ended = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            kind, *values = line.split()
            if kind == "pid":
                self._started.put(int(values[0]))
            elif kind == "exit":
                with self._ended:
                    self._exits[int(values[0])] = int(values[1])
                    self._ended.notify_all()
        with self._ended:  # the parent is gone: so is any child it did not report
            self._exits[-1] = -1
            self._ended.notify_all()

    def start(self, argv: list[str], stderr: TextIO, timeout_s: float = 30.0) -> Forked:
        read, write = os.pipe()
        try:
            message = json.dumps(argv).encode()
            socket.send_fds(self._runs, [message], [write, stderr.fileno()])
        finally:
            os.close(write)
        try:
            pid = self._started.get(timeout=timeout_s)
        except queue.Empty:
            os.close(read)
            raise AssertionError(f"crash_forks forked nothing in {timeout_s}s") from None
        return Forked(self, pid, os.fdopen(read, "r"))

    def exit_code(self, pid: int, timeout_s: float | None) -> int | None:
        with self._ended:
            self._ended.wait_for(lambda: pid in self._exits or -1 in self._exits, timeout_s)
            return self._exits.get(pid, self._exits.get(-1))

    def close(self) -> None:
        self._runs.close()  # the parent's next read ends it
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._reader.join(timeout=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self) -> Forks:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Forked:
    """A forked driver: its stdout, and poll/wait/kill as `subprocess.Popen` has them."""

    def __init__(self, forks: Forks, pid: int, stdout: TextIO) -> None:
        self._forks = forks
        self.pid = pid
        self.stdout = stdout
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self._forks.exit_code(self.pid, 0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            self.returncode = self._forks.exit_code(self.pid, timeout)
        if self.returncode is None:
            raise subprocess.TimeoutExpired(f"driver {self.pid}", timeout or 0)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):  # ended: its exit is on its way
                os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)
