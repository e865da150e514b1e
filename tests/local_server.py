"""A small Starlette app behind uvicorn on a free port of 127.0.0.1, in a thread: the
real HTTP servers that stand in for providers' and chat tools' endpoints in tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from starlette.applications import Starlette
from starlette.routing import Route

from tests import ports


def free_port() -> int:
    return ports.free_port()


def start(app: Starlette, port: int) -> tuple[uvicorn.Server, threading.Thread]:
    """`app` on `port`, once it listens; stop it with `should_exit` and a join."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.01)  # a real server thread binding its port
    return server, thread


@contextmanager
def serving(*routes: Route) -> Iterator[int]:
    """Serve `routes` until the block ends; yields the port."""
    port = free_port()
    server, thread = start(Starlette(routes=list(routes)), port)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)
