"""A small Stripe-shaped HTTP server on 127.0.0.1: answers scripted per request, in
Stripe's wire format, from the error objects Stripe documents
(https://docs.stripe.com/api/errors, https://docs.stripe.com/error-codes,
https://docs.stripe.com/declines/codes). It stands in where localstripe cannot: a
decline with its `decline_code`, a 5xx, a 429, a lost or garbled answer.

Every request is recorded (method, path, headers, form fields) so tests can check
what the connector sent: the Idempotency-Key, the metadata, the amount.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any] | bytes
    headers: dict[str, str] = field(default_factory=dict)


DROP = "drop"  # read the request, then close the connection without a word
HANG = "hang"  # read the request and answer nothing until the server closes


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, str]


def error(status: int, **fields: Any) -> Answer:
    """A Stripe error answer: {"error": {...}} (https://docs.stripe.com/api/errors)."""
    return Answer(status, {"error": fields}, {"Request-Id": "req_shaped"})


def intent(pi_id: str, status: str, key: str = "", **more: Any) -> dict[str, Any]:
    """A PaymentIntent as Stripe returns it (https://docs.stripe.com/api/payment_intents/object)."""
    return {
        "id": pi_id,
        "object": "payment_intent",
        "amount": 1000,
        "currency": "eur",
        "status": status,
        "metadata": {"paymend_attempt": key} if key else {},
        "next_action": None,
        "last_payment_error": None,
        **more,
    }


class ShapedStripe:
    def __init__(self) -> None:
        self.script: dict[tuple[str, str], deque[Answer | str]] = {}
        self.seen: list[Seen] = []
        self._closing = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server._handle(self, "GET")

            def do_POST(self) -> None:
                server._handle(self, "POST")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def on(self, method: str, path: str, *answers: Answer | str) -> None:
        """Answer the next requests to `method path` with `answers`, in order."""
        self.script.setdefault((method, path), deque()).extend(answers)

    def requests(self, method: str, path: str) -> list[Seen]:
        return [s for s in self.seen if (s.method, s.path) == (method, path)]

    def reset(self) -> None:
        """Forget the script and the requests; let go of any hanging answer."""
        self._closing.set()
        self._closing = threading.Event()
        self.script.clear()
        self.seen.clear()

    def close(self) -> None:
        self._closing.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length).decode() if length else ""
        form = dict(parse_qsl(body or parts.query, keep_blank_values=True))
        self.seen.append(Seen(method, parts.path, dict(handler.headers.items()), form))
        queue = self.script.get((method, parts.path))
        if not queue:
            answer: Answer | str = error(
                404,
                type="invalid_request_error",
                code="resource_missing",
                message=f"Unrecognized request URL ({method}: {parts.path}).",
            )
        else:
            answer = queue.popleft()
        if answer == DROP:
            handler.close_connection = True
            handler.connection.shutdown(2)
            return
        if answer == HANG:
            self._closing.wait()  # released by reset() or close(), never by a timer
            return
        assert isinstance(answer, Answer)
        raw = answer.body if isinstance(answer.body, bytes) else json.dumps(answer.body).encode()
        handler.send_response(answer.status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(raw)))
        for name, value in answer.headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(raw)
