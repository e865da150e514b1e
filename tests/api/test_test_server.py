"""The API tests' server (tests/api/conftest.py) serves as `paymend serve` does."""

from __future__ import annotations

import socket

import httpx
from starlette.types import Receive, Scope, Send

from paymend.config import Settings
from tests.api.conftest import serve_asgi
from tests.helpers import WAIT_S


async def two_part_answer(scope: Scope, receive: Receive, send: Send) -> None:
    """An answer whose head and body leave in two writes, as every ASGI answer does."""
    if scope["type"] != "http":
        return
    head = [(b"content-type", b"text/plain"), (b"content-length", b"2")]
    await send({"type": "http.response.start", "status": 200, "headers": head})
    await send({"type": "http.response.body", "body": b"ok"})


def test_connections_are_accepted_without_nagles_delay() -> None:
    """asyncio turns Nagle's algorithm off only on sockets that say they are TCP; on one
    made with `socket.socket()` every answer on a kept-alive connection waited 40 ms for
    the client's delayed ACK (schemathesis' requests took 45 ms instead of 3)."""
    uv, thread, url = serve_asgi(two_part_answer, Settings(), lifespan="off")
    try:
        with httpx.Client(base_url=url, timeout=WAIT_S) as client:
            assert client.get("/").text == "ok"
            (connection,) = uv.server_state.connections
            sock = connection.transport.get_extra_info("socket")
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    finally:
        uv.should_exit = True
        thread.join(10)
