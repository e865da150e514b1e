"""The server bounds slow and greedy clients: a request head or body that does not arrive
in time is answered 408 and its connection closed, an idle keep-alive connection is
closed, a head over the size limit is a 431, and past the connection limit a request is
a 503. A real server and raw sockets, with timeouts of a fifth of a second."""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from paymend.config import PaymendConfig, Settings
from paymend.engine.runtime import build_runtime
from tests.api.conftest import CONFIG, Server, running
from tests.helpers import count_rows

SHORT = 0.2


def start(sqlite_url: str, **http: Any) -> Any:
    settings = Settings(database_url=sqlite_url, **http)
    return running(build_runtime(settings, PaymendConfig.model_validate(CONFIG)))


@pytest.fixture
def server(sqlite_url: str) -> Iterator[Server]:
    with start(
        sqlite_url,
        http_header_timeout=SHORT,
        http_body_timeout=SHORT,
        http_keep_alive=SHORT,
        http_max_header_bytes=2048,
    ) as server:
        yield server


def connect(server: Server) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=3)


def read_to_close(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (bounded by the
    socket's timeout)."""
    data = b""
    while chunk := sock.recv(4096):
        data += chunk
    return data


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One response, leaving the connection open."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, "the server closed the connection"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    while len(body) < int(headers.get("content-length", 0)):
        body += sock.recv(4096)
    return int(status_line.split()[1]), headers, body


def parse(raw: bytes) -> tuple[int, dict[str, Any]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_a_request_head_that_does_not_arrive_in_time_is_a_408_and_closed(server: Server) -> None:
    with connect(server) as sock:
        began = time.monotonic()
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: paymend\r\nX-Slow: ")
        raw = read_to_close(sock)
        took = time.monotonic() - began
    status, body = parse(raw)
    assert status == 408 and body["error"]["code"] == "request_timeout"
    assert SHORT * 0.9 <= took < 1.0


def test_a_client_trickling_its_head_is_cut_off_at_the_timeout(server: Server) -> None:
    """Slowloris: a byte now and then resets no timer; the head as a whole must be in
    on time."""
    with connect(server) as sock:
        began = time.monotonic()
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        answer = b""
        while time.monotonic() - began < 2:
            readable, _, _ = select.select([sock], [], [], 0.03)  # waits on the socket
            if not readable:
                sock.sendall(b"X")  # one more byte of a header that never ends
                continue
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
        took = time.monotonic() - began
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert took < 1.0


def test_a_connection_that_sends_nothing_is_closed_silently(server: Server) -> None:
    with connect(server) as sock:
        began = time.monotonic()
        assert read_to_close(sock) == b""
        assert time.monotonic() - began < 1.0


def test_a_body_that_stalls_is_a_408_and_closed(server: Server) -> None:
    before = count_rows(server.runtime.store)
    with connect(server) as sock:
        sock.sendall(
            b"POST /v1/payments HTTP/1.1\r\nHost: paymend\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
            b'{"amount": '
        )
        began = time.monotonic()
        raw = read_to_close(sock)
        took = time.monotonic() - began
    status, body = parse(raw)
    assert status == 408 and body["error"]["code"] == "request_timeout"
    assert b"connection: close" in raw.lower()
    assert SHORT * 0.9 <= took < 1.0
    assert count_rows(server.runtime.store) == before


def test_an_idle_keep_alive_connection_is_closed(server: Server) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: paymend\r\n\r\n")
        status, _, _ = read_response(sock)
        assert status == 200
        began = time.monotonic()
        assert read_to_close(sock) == b""
        assert time.monotonic() - began < 1.0


def test_a_request_head_over_the_size_limit_is_a_431(server: Server) -> None:
    with connect(server) as sock:
        sock.sendall(
            b"GET /healthz HTTP/1.1\r\nHost: paymend\r\nX-Big: " + b"a" * 4096 + b"\r\n\r\n"
        )
        raw = read_to_close(sock)
    status, body = parse(raw)
    assert status == 431 and body["error"]["code"] == "request_header_too_large"


def test_a_head_growing_past_the_size_limit_is_a_431_before_it_ends(server: Server) -> None:
    """A head sent in pieces is refused once it outgrows the limit: it never ends, and
    the timeout would have answered 408."""
    with connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: paymend\r\n")
        for _ in range(6):  # 6 x 500 bytes of one header that has not ended
            readable, _, _ = select.select([sock], [], [], 0.01)  # waits on the socket
            if readable:
                break  # answered already
            sock.sendall(b"X-Big-" + b"a" * 494)
        raw = read_to_close(sock)
    status, body = parse(raw)
    assert status == 431 and body["error"]["code"] == "request_header_too_large"


def test_requests_sent_together_on_one_connection_are_each_answered(server: Server) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: paymend\r\n\r\n" * 2)
        answers = b""  # both answers may come in one read
        while answers.count(b"HTTP/1.1 200 ") < 2 or not answers.endswith(b"}"):
            chunk = sock.recv(4096)
            assert chunk, f"the server closed the connection after {answers!r}"
            answers += chunk
        assert answers.count(b"HTTP/1.1 ") == 2
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: paymend\r\n\r\n")  # and once more
        assert read_response(sock)[0] == 200


def test_past_the_connection_limit_a_request_is_a_503(sqlite_url: str) -> None:
    with start(sqlite_url, http_max_connections=3) as server:
        held = [connect(server) for _ in range(3)]
        try:
            for sock in held:  # each served once, then idle: three open connections
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: paymend\r\n\r\n")
                assert read_response(sock)[0] == 200
            with connect(server) as extra:
                extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: paymend\r\n\r\n")
                raw = read_to_close(extra)
            status, body = parse(raw)
            assert status == 503 and body["error"]["code"] == "server_busy"
            assert b"retry-after: 1" in raw.lower()
        finally:
            for sock in held:
                sock.close()
        # the held connections gone, the server takes requests again
        began = time.monotonic()
        while True:
            with connect(server) as sock:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: paymend\r\nConnection: close\r\n\r\n")
                if read_to_close(sock).startswith(b"HTTP/1.1 200"):
                    break
            assert time.monotonic() - began < 2, "still refused after the connections closed"
