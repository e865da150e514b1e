"""With an exporter, a request is one recorded server span, paymend's: FastAPI's own
telemetry stays off (api/app.py), so no second server span and no FastAPI log record
carrying an exception's message. `OTEL_TRACES_EXPORTER=otlp` sends the spans by OTLP
over HTTP to a real receiver on 127.0.0.1. Each runs in a child process: OpenTelemetry
takes a global tracer provider once per process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider

from paymend.observability.tracing import TracingSettingInvalid, configure_tracing
from paymend.store.database import Store
from tests.helpers import count_rows

ROOT = Path(__file__).resolve().parents[2]

CHILD = r"""
import json, sys

import httpx
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from paymend.observability.tracing import CardFreeIds
from tests.api.conftest import running_on

exporter = InMemorySpanExporter()
provider = TracerProvider(id_generator=CardFreeIds())
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)

with running_on(sys.argv[1]) as server, server.client() as api:
    created = api.post(
        "/v1/payments",
        json={"amount": 1999, "currency": "CNY", "method": "card", "order_id": "o-span-1"},
        headers={"Idempotency-Key": "k-span-1"},
    )
spans = [
    {
        "name": s.name,
        "kind": s.kind.name,
        "trace_id": format(s.context.trace_id, "032x"),
        "scope": s.instrumentation_scope.name if s.instrumentation_scope else "",
    }
    for s in exporter.get_finished_spans()
]
print(json.dumps({"status": created.status_code, "trace_id": created.headers["x-trace-id"],
                  "attempt_trace": created.json()["attempts"][0]["trace_id"], "spans": spans}))
"""


def run_child(script: str, db_url: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run `script` in a fresh interpreter from the project's root; the JSON object it
    prints last."""
    done = subprocess.run(
        [sys.executable, "-c", script, db_url],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def test_an_exported_request_is_one_server_span_of_paymends(sqlite_url: str) -> None:
    seen = run_child(CHILD, sqlite_url)
    assert seen["status"] == 201
    servers = [s for s in seen["spans"] if s["kind"] == "SERVER"]
    assert [(s["name"], s["scope"]) for s in servers] == [("POST /v1/payments", "paymend")]
    # the recorded span is the request's: its trace id is the one the shop was given
    assert servers[0]["trace_id"] == seen["trace_id"] == seen["attempt_trace"]
    assert not [s for s in seen["spans"] if s["scope"].startswith("fastapi")]


OTLP_CHILD = r"""
import json, sys

from opentelemetry import trace

from tests.api.conftest import running_on

with running_on(sys.argv[1]) as server, server.client() as api:
    created = api.post(
        "/v1/payments",
        json={"amount": 1999, "currency": "CNY", "method": "card", "order_id": "o-otlp-1"},
        headers={"Idempotency-Key": "k-otlp-1"},
    )
trace.get_tracer_provider().force_flush()
print(json.dumps({"status": created.status_code, "trace_id": created.headers["x-trace-id"]}))
"""


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[str, bytes]]]]:
    """An OTLP/HTTP receiver on 127.0.0.1: every POST's path and body, answered 200."""
    got: list[tuple[str, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.append((self.path, self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            """Quiet: the test reads what arrived."""

    http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{http.server_address[1]}", got
    finally:
        http.shutdown()
        http.server_close()


def test_otel_traces_exporter_otlp_sends_the_span_to_the_collector(
    sqlite_url: str, receiver: tuple[str, list[tuple[str, bytes]]]
) -> None:
    url, got = receiver
    env = {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": url}
    answer = run_child(OTLP_CHILD, sqlite_url, env)
    assert answer["status"] == 201
    assert got and {path for path, _ in got} == {"/v1/traces"}
    spans = []
    for _, body in got:
        sent = ExportTraceServiceRequest()
        sent.ParseFromString(body)
        spans += [
            (span.name, span.trace_id.hex(), scope.scope.name)
            for resource in sent.resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        ]
    assert ("POST /v1/payments", answer["trace_id"], "paymend") in spans


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "zipkin"),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "grpc"),
    ],
)
def test_an_exporter_paymend_cannot_follow_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], named: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(TracingSettingInvalid, match=named):
        configure_tracing()
    assert not isinstance(trace.get_tracer_provider(), TracerProvider)  # none installed


def test_serve_with_an_exporter_it_cannot_follow_stops_naming_it(sqlite_url: str) -> None:
    store = Store(sqlite_url, inline=True)
    try:
        before = count_rows(store)
        done = subprocess.run(
            [sys.executable, "-m", "paymend.cli", "serve", "--port", "0"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env={
                **os.environ,
                "PAYMEND_DATABASE_URL": sqlite_url,
                "OTEL_TRACES_EXPORTER": "zipkin",
            },
            timeout=120,
            check=False,
        )
        assert done.returncode == 1, done.stderr[-2000:]
        assert "Error: OTEL_TRACES_EXPORTER='zipkin'" in done.stderr
        assert "Traceback" not in done.stderr
        assert count_rows(store) == before  # no instance registered, nothing written
    finally:
        store.close()
