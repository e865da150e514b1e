"""The HTTP server's bounds on slow and greedy clients, as uvicorn options.

uvicorn times out a keep-alive connection between requests, but not a client that
trickles its request head (slowloris), and it answers its concurrency limit and bad
requests in plain text. `BoundedH11Protocol`, a small subclass of uvicorn's h11
protocol, adds the header read timeout and answers those refusals with paymend's error
object. The body read timeout is the guard's (`api/guard.py`), which reads every body.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any, cast

import h11
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from paymend.api.errors import error_body
from paymend.config import Settings
from paymend.observability import SLOW_CLIENTS


class BoundedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a request-head timeout, a head size limit and a
    connection limit.

    A connection must deliver a complete request head within `header_timeout_s` of its
    first byte (of opening, for a new connection): one that does not is answered 408
    and closed (closed silently if it sent nothing). With more than `max_connections`
    connections open, a request is answered 503 and its connection closed.
    """

    header_timeout_s: float = 10.0
    max_connections: int | None = None
    max_header_bytes: int = 16 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        self._inner_app = self.app
        self.app = self._admit

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def data_received(self, data: bytes) -> None:
        if self._head_timer is None and self.conn.their_state is h11.IDLE:
            self._arm_head_timer()  # the first byte of the next request on this connection
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._disarm_head_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.conn.their_state is h11.IDLE and self.conn.trailing_data[0]:
            self._arm_head_timer()  # part of a pipelined request is already in

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def _arm_head_timer(self) -> None:
        self._disarm_head_timer()
        self._head_timer = self.loop.call_later(self.header_timeout_s, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        SLOW_CLIENTS.labels("header_timeout").inc()
        if self.conn.trailing_data[0]:
            message = f"the request head did not arrive within {self.header_timeout_s:g}s"
            self.transport.write(_raw_response(408, error_body("request_timeout", message)))
        self.transport.close()

    async def _admit(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The app, unless too many connections are open (503) or the request head is
        over the size limit (431). h11 bounds a head only while it is incomplete, so one
        that arrives whole is measured here. This request's own task is already counted,
        so the connection limit is exceeded only past `max_connections`."""
        limit = self.max_connections
        if limit is not None and (len(self.connections) > limit or len(self.tasks) > limit):
            SLOW_CLIENTS.labels("over_capacity").inc()
            await _refuse(send, 503, _BUSY, ((b"retry-after", b"1"),))
            return
        head = len(scope["raw_path"]) + len(scope["query_string"])
        head += sum(len(name) + len(value) + 4 for name, value in scope["headers"])
        if head > self.max_header_bytes:
            await _refuse(send, 431, _HEAD_TOO_LARGE)
            return
        await self._inner_app(scope, receive, send)

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a request h11 cannot parse, as paymend's error object;
        431 when the head is over the size limit (h11's hint)."""
        error = sys.exc_info()[1]
        status = getattr(error, "error_status_hint", 400)
        if status == 431:
            body = _HEAD_TOO_LARGE
        else:
            status = 400
            body = error_body("invalid_http_request", "the request is not valid HTTP/1.1")
        raw = json.dumps(body).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(raw)).encode()),
            (b"connection", b"close"),
        ]
        for event in (
            h11.Response(status_code=status, headers=headers, reason=_REASONS.get(status, b"")),
            h11.Data(data=raw),
            h11.EndOfMessage(),
        ):
            self.transport.write(self.conn.send(event) or b"")
        self.transport.close()


_BUSY = error_body(
    "server_busy",
    "the server has too many open connections; try again shortly",
    type="api_error",
)
_HEAD_TOO_LARGE = error_body(
    "request_header_too_large", "the request line and headers are over the server's size limit"
)
_REASONS = {400: b"Bad Request", 408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


async def _refuse(
    send: Send, status: int, payload: dict[str, Any], headers: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    """Answer with paymend's error object and close the connection."""
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _raw_response(status: int, payload: dict[str, Any]) -> bytes:
    """A whole response written before h11 has a request to answer (it cannot send one)."""
    body = json.dumps(payload).encode()
    head = (
        f"HTTP/1.1 {status} {_REASONS[status].decode()}\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode() + body


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """uvicorn.run / uvicorn.Config keyword arguments for paymend's bounds."""

    class Protocol(BoundedH11Protocol):
        header_timeout_s = settings.http_header_timeout
        max_connections = settings.http_max_connections
        max_header_bytes = settings.http_max_header_bytes

    return {
        "http": Protocol,
        # uvicorn types it int; any number of seconds works (loop.call_later)
        "timeout_keep_alive": cast(int, settings.http_keep_alive),
        "h11_max_incomplete_event_size": settings.http_max_header_bytes,
        "log_config": None,  # logging is paymend's (observability.configure_logging)
        "access_log": False,  # the guard logs each request, masked
    }
