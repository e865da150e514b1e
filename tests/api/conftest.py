"""A real paymend server on 127.0.0.1 (uvicorn in a thread), per test, on SQLite or
PostgreSQL, with zero-latency simulated channels."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import httpx
import pytest
import uvicorn
from starlette.types import ASGIApp

from paymend.api.app import create_app
from paymend.api.server import uvicorn_options
from paymend.config import PaymendConfig, Settings
from paymend.domain.clock import Clock
from paymend.engine.runtime import Runtime, build_runtime
from tests.helpers import make_merchant

T = TypeVar("T")

CONFIG: dict[str, Any] = {
    "seed": 3,
    "providers": {
        "sim_a": {"type": "simulator", "methods": ["card", "alipay"]},
        "sim_b": {"type": "simulator", "methods": ["card", "alipay", "wechat_pay"]},
    },
    "routing": ["sim_a", "sim_b"],
    "engine": {"provider_timeout": "5s"},
}


@dataclass
class Server:
    url: str
    runtime: Runtime
    key: str
    merchant_id: str
    uvicorn: uvicorn.Server | None = None  # set by `running`: its event loop is the server's

    def on_loop(self, work: Coroutine[Any, Any, T], timeout_s: float = 60) -> T:
        """Run `work` (the worker's, the playbooks') on the server's own event loop: the
        store's SQLite turn is that loop's, and a second loop taking it would race it."""
        assert self.uvicorn is not None, "a server `running` started"
        loop = self.uvicorn.servers[0].get_loop()
        return asyncio.run_coroutine_threadsafe(work, loop).result(timeout_s)

    def client(self, key: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {key or self.key}"},
            timeout=30,
        )


def serve(runtime: Runtime) -> tuple[uvicorn.Server, threading.Thread, str]:
    """`runtime`'s app behind uvicorn with the options `paymend serve` uses."""
    return serve_asgi(create_app(runtime), runtime.settings)


def bound_socket() -> socket.socket:
    """A socket bound to a free port of 127.0.0.1 (its URL can be known before serving)."""
    # IPPROTO_TCP named, or asyncio leaves Nagle's algorithm on for the connections it
    # accepts (it sets TCP_NODELAY only on sockets that say they are TCP), and every
    # answer on a kept-alive connection waits 40 ms for a delayed ACK
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    return sock


def serve_asgi(
    app: ASGIApp,
    settings: Settings,
    *,
    lifespan: Literal["auto", "on", "off"] = "on",
    sock: socket.socket | None = None,
) -> tuple[uvicorn.Server, threading.Thread, str]:
    """`app` behind uvicorn with the options `paymend serve` uses (the HTTP bounds of
    `settings`), on a free port of 127.0.0.1 (or on `sock`), in a thread."""
    sock = sock or bound_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan=lifespan, **uvicorn_options(settings))
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)  # waiting for a real server thread to bind, not for test timing
    return server, thread, f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def running(runtime: Runtime) -> Iterator[Server]:
    """Serve `runtime` with one merchant until the block ends, then close it."""
    merchant_id, key = make_merchant(runtime.store)
    uv, thread, url = serve(runtime)
    try:
        yield Server(url, runtime, key, merchant_id, uv)
    finally:
        uv.should_exit = True
        thread.join(10)
        runtime.close()


@contextlib.contextmanager
def running_on(db_url: str, clock: Clock | None = None) -> Iterator[Server]:
    """Serve CONFIG on `db_url` (on `clock`, when the test moves time) until the block ends."""
    config = PaymendConfig.model_validate(CONFIG)
    with running(build_runtime(Settings(database_url=db_url), config, clock=clock)) as server:
        yield server


@pytest.fixture
def server(db_url: str) -> Iterator[Server]:
    with running_on(db_url) as server:
        yield server


@pytest.fixture
def api(server: Server) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client
