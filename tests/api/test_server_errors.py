"""An error that escapes the app is a JSON 500 with a trace id, logged as its type and
place; uvicorn never prints a raw traceback, and its own complaints are JSON lines too."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from paymend.api.guard import RequestGuard
from paymend.config import Settings
from paymend.observability.tracing import configure_tracing
from tests.api.conftest import serve_asgi
from tests.logs import captured

SECRET = "tok_live_secret_900d and 4242424242424242"


async def broken(scope: Scope, receive: Receive, send: Send) -> None:
    """An app with a bug: the deepest recursion, or a ValueError quoting its input."""
    if scope["path"] == "/recursion":

        def down(n: int) -> int:
            return down(n + 1) + 1

        down(0)
    raise ValueError(SECRET)


@pytest.fixture
def url() -> Iterator[str]:
    configure_tracing()  # as create_app does: spans with real trace ids
    uv, thread, url = serve_asgi(RequestGuard(broken), Settings(), lifespan="off")
    try:
        yield url
    finally:
        uv.should_exit = True
        thread.join(10)


@pytest.mark.parametrize(
    ("path", "error_type"), [("/x", "ValueError"), ("/recursion", "RecursionError")]
)
def test_an_escaping_error_is_a_json_500_logged_without_its_message(
    url: str, path: str, error_type: str
) -> None:
    with captured() as logs:
        response = httpx.post(url + path, json={"a": 1}, timeout=10)
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert response.json()["error"]["type"] == "api_error"
    trace_id = response.headers["x-trace-id"]
    lines = logs.lines()
    (error,) = [line for line in lines if line["event"] == "unhandled_error"]
    assert error["error_type"] == error_type
    assert error["trace_id"] == trace_id
    assert error["error_at"]
    # neither the message nor its card number, even masked (a bare "4242" could be in a
    # time stamp's microseconds or a trace id)
    leaks = ("tok_live", "secret_900d", "4242424242424242", "****4242")
    assert not [part for part in leaks if part in logs.text]
    assert "Traceback" not in logs.text
    assert not [line for line in lines if line.get("logger", "").startswith("uvicorn")]


def test_a_request_uvicorn_cannot_parse_gets_a_json_400_and_a_json_log_line(url: str) -> None:
    host, port = url.removeprefix("http://").split(":")
    with captured() as logs, socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")
    assert b'"code": "invalid_http_request"' in body
    (line,) = [x for x in logs.lines() if x.get("logger") == "uvicorn.error"]
    assert line["event"] == "Invalid HTTP request received." and line["level"] == "warning"
