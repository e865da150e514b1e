"""Free ports for servers a test starts on a port it names (a subprocess, or a server
the test must restart on the same port).

A port the kernel hands out for port 0 and the test then releases can be handed to
another test worker before the server binds it, and the test would then talk to the
other worker's server. Each pytest-xdist worker therefore takes its ports from a range
of its own below the kernel's ephemeral range (32768 and up on Linux), which port 0
and outgoing connections never use."""

from __future__ import annotations

import os
import random
import socket

BASE = 20000
SPAN = 2000
RANGES = 6  # 20000-31999


def free_port() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    index = int(worker) % RANGES if worker.isdigit() else 0
    low = BASE + index * SPAN
    start = random.randrange(SPAN)
    for step in range(SPAN):
        port = low + (start + step) % SPAN
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {low}-{low + SPAN - 1}")
