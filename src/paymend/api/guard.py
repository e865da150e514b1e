"""An ASGI guard in front of every request: tracing, request logs, body limits, and the
refusal of card data before anything parses, stores or logs the body."""

from __future__ import annotations

import json
import time
from typing import Any

from opentelemetry import trace
from opentelemetry.propagate import extract
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from paymend.api.errors import error_body
from paymend.domain.masking import contains_card_data, find_card_number
from paymend.observability import REQUEST_LATENCY, REQUESTS, get_logger, tracer

log = get_logger("paymend.api")
MAX_BODY_BYTES = 64 * 1024


class RequestGuard:
    def __init__(self, app: ASGIApp, max_body: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        method, path = scope["method"], scope["path"]
        start = time.perf_counter()
        status_holder = {"status": 500}

        async def send_logged(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                trace_id = _trace_id()
                if trace_id:
                    message.setdefault("headers", [])
                    message["headers"].append((b"x-trace-id", trace_id.encode()))
            await send(message)

        with tracer().start_as_current_span(
            f"{method} {path}", context=extract(headers), kind=trace.SpanKind.SERVER
        ):
            try:
                if method in ("POST", "PUT", "PATCH"):
                    body, refusal = await self._read_checked(headers, receive)
                    if refusal is not None:
                        await _send_json(send_logged, *refusal)
                        return
                    receive = _replay(body)
                await self.app(scope, receive, send_logged)
            finally:
                route = _route_template(scope)
                elapsed = time.perf_counter() - start
                REQUESTS.labels(method, route, str(status_holder["status"])).inc()
                REQUEST_LATENCY.labels(method, route).observe(elapsed)
                if path != "/metrics":
                    log.info(
                        "http_request",
                        method=method,
                        path=path,
                        status=status_holder["status"],
                        latency_ms=round(elapsed * 1000, 1),
                        trace_id=_trace_id(),
                    )

    async def _read_checked(
        self, headers: dict[str, str], receive: Receive
    ) -> tuple[bytes, tuple[int, dict[str, Any]] | None]:
        too_large = (
            413,
            error_body("body_too_large", f"the request body must be at most {self.max_body} bytes"),
        )
        declared = headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_body:
            return b"", too_large
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return b"", too_large
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if not body:
            return body, None  # an action without a body (confirm, cancel)
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            return b"", (
                415,
                error_body(
                    "unsupported_media_type",
                    "send the body as JSON with 'Content-Type: application/json'",
                ),
            )
        where = _card_data_in(body)
        if where is not None:
            log.warning("card_data_refused", field=where)
            return b"", (
                400,
                error_body(
                    "card_data_not_allowed",
                    "raw card numbers and security codes are never accepted; send the "
                    "payment_token from your provider's client-side SDK instead",
                    param=where or None,
                ),
            )
        return body, None


def _card_data_in(body: bytes) -> str | None:
    """The field holding card data ('' if unparsable text holds some), else None."""
    try:
        parsed = json.loads(body) if body else None
    except (ValueError, UnicodeDecodeError):
        text = body.decode("utf-8", "replace")
        return "" if find_card_number(text) else None
    return contains_card_data(parsed)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


async def _send_json(send: Send, status: int, payload: dict[str, Any]) -> None:
    raw = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(raw)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": raw})


def _trace_id() -> str | None:
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    return str(getattr(route, "path", "unmatched"))
