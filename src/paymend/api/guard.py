"""An ASGI guard in front of every request: tracing, request logs, the body's size, type
and read timeout, the refusal of card data and unsafe text before anything parses, stores
or logs the body (`api/inputs.py`), and a JSON 500 for any error that escapes the app, so
the server never prints a raw traceback."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context, get_current
from opentelemetry.propagate import extract, get_global_textmap
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from paymend.api.errors import error_body
from paymend.api.inputs import body_refusal
from paymend.observability import (
    REQUEST_LATENCY,
    REQUESTS,
    SLOW_CLIENTS,
    children,
    get_logger,
)
from paymend.observability.tracing import id_holds_card_number, server_span

log = get_logger("paymend.api")
_REQUESTS, _REQUEST_LATENCY = children(REQUESTS), children(REQUEST_LATENCY)  # every request
MAX_BODY_BYTES = 64 * 1024
BODY_TIMEOUT_S = 10.0
WITH_BODY = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_CLIENT_GONE = 499  # logged only: nginx's code for a client that closed the request


@dataclass(frozen=True, slots=True)
class Refusal:
    status: int
    body: dict[str, Any]
    close: bool = False  # the rest of the request is not read: close the connection


class RequestGuard:
    def __init__(
        self, app: ASGIApp, max_body: int = MAX_BODY_BYTES, body_timeout_s: float = BODY_TIMEOUT_S
    ) -> None:
        self.app = app
        self.max_body = max_body
        self.body_timeout_s = body_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        method, path = scope["method"], scope["path"]
        start = time.perf_counter()
        state: dict[str, int] = {"status": 500, "started": 0, "logged": 0}

        def log_request() -> None:
            """Once per request, before its last byte leaves: whoever has the answer
            finds the line written."""
            if state["logged"]:
                return
            state["logged"] = 1
            route = _route_template(scope)
            elapsed = time.perf_counter() - start
            _REQUESTS(method, route, str(state["status"])).inc()
            _REQUEST_LATENCY(method, route).observe(elapsed)
            if path != "/metrics":
                log.info(
                    "http_request",
                    method=method,
                    path=path,
                    status=state["status"],
                    latency_ms=round(elapsed * 1000, 1),
                    trace_id=_trace_id(),
                )

        async def send_logged(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"], state["started"] = message["status"], 1
                trace_id = _trace_id()
                if trace_id:
                    message.setdefault("headers", [])
                    message["headers"].append((b"x-trace-id", trace_id.encode()))
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                log_request()
            await send(message)

        with server_span(f"{method} {path}", _caller_context(headers)):
            try:
                if method in WITH_BODY:
                    # the console's and the customers' pages' forms are checked by
                    # the console's form reader (console/web.py)
                    raw = provider_signed(path) or path.startswith(_FORM_PATHS)
                    body, refusal = await self._read_checked(headers, receive, raw=raw)
                    if body is None:
                        state["status"] = _CLIENT_GONE
                        return
                    if refusal is not None:
                        await _send_json(send_logged, refusal)
                        return
                    receive = _replay(body)
                await self.app(scope, receive, send_logged)
            except Exception as exc:
                # the last line before the server: its type and where, never its message
                log.error("unhandled_error", trace_id=_trace_id(), exc_info=exc)
                if not state["started"]:
                    with contextlib.suppress(Exception):  # the client may be gone too
                        await _send_json(send_logged, _INTERNAL_ERROR)
            finally:
                log_request()

    def _too_large(self) -> Refusal:
        return Refusal(
            413,
            error_body("body_too_large", f"the request body must be at most {self.max_body} bytes"),
        )

    async def _read_checked(
        self, headers: dict[str, str], receive: Receive, *, raw: bool = False
    ) -> tuple[bytes | None, Refusal | None]:
        """The body, or why it is refused; (None, None) when the client went away. A
        `raw` body (a provider's signed notification) is bounded in size and time only:
        its own format, verified by its connector over the exact bytes."""
        declared = headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_body:
            return b"", self._too_large()
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.body_timeout_s):
                more = True
                while more:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return None, None
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > self.max_body:
                        return b"", self._too_large()
                    chunks.append(chunk)
                    more = message.get("more_body", False)
        except TimeoutError:
            SLOW_CLIENTS.labels("body_timeout").inc()
            return b"", Refusal(
                408,
                error_body(
                    "request_timeout",
                    f"the request body did not arrive within {self.body_timeout_s:g}s",
                ),
                close=True,
            )
        body = b"".join(chunks)
        if not body or raw:
            return body, None  # an action without a body (confirm, cancel); a provider's
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            return b"", Refusal(
                415,
                error_body(
                    "unsupported_media_type",
                    "send the body as JSON with 'Content-Type: application/json'",
                ),
            )
        refused = body_refusal(body)
        if refused is not None:
            status, payload = refused
            if payload["error"]["code"] == "card_data_not_allowed":
                log.warning("card_data_refused", field=payload["error"]["param"])
            return b"", Refusal(status, payload)
        return body, None


_INTERNAL_ERROR = Refusal(
    500,
    error_body(
        "internal_error",
        "an unexpected error occurred; it has been logged with this response's X-Trace-Id",
        type="api_error",
    ),
)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


async def _send_json(send: Send, refusal: Refusal) -> None:
    raw = json.dumps(refusal.body).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(raw)).encode()),
    ]
    if refusal.close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
    await send({"type": "http.response.body", "body": raw})


_PROVIDER_SIGNED = re.compile(r"^/v1/providers/[^/]+/notifications$")


_FORM_PATHS = ("/console/", "/pay/", "/help/")


def provider_signed(path: str) -> bool:
    """A provider's notification: a body in the provider's own signed format."""
    return _PROVIDER_SIGNED.match(path) is not None


def _caller_context(headers: dict[str, str]) -> Context:
    """The caller's trace (W3C `traceparent`) to join, unless its trace id holds a card
    number: then a trace of our own, so no log line has to mask its trace id. A request
    without any header the propagators read (most) joins nothing: the current context,
    what extracting would give, without asking each propagator."""
    if headers.keys().isdisjoint(get_global_textmap().fields):
        return get_current()
    context = extract(headers)
    caller = trace.get_current_span(context).get_span_context()
    if caller.is_valid and id_holds_card_number(format(caller.trace_id, "032x")):
        return Context()  # empty: not whatever context the task happens to carry
    return context


def _trace_id() -> str | None:
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    if route is not None:
        return str(getattr(route, "path", "unmatched"))
    # a mounted app (the docs pages' scripts and styles) moves the root path to its mount
    mounted = str(scope.get("root_path", ""))[len(str(scope.get("app_root_path", ""))) :]
    return mounted or "unmatched"
