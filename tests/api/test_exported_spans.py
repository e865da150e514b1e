"""With an exporter, a request is one recorded server span, paymend's: FastAPI's own
telemetry stays off (api/app.py), so no second server span and no FastAPI log record
carrying an exception's message. Run in a child process: OpenTelemetry takes a global
tracer provider once per process, and this one records every span it is given."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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


def test_an_exported_request_is_one_server_span_of_paymends(sqlite_url: str) -> None:
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", CHILD, sqlite_url],
        capture_output=True,
        text=True,
        cwd=root,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["status"] == 201
    servers = [s for s in seen["spans"] if s["kind"] == "SERVER"]
    assert [(s["name"], s["scope"]) for s in servers] == [("POST /v1/payments", "paymend")]
    # the recorded span is the request's: its trace id is the one the shop was given
    assert servers[0]["trace_id"] == seen["trace_id"] == seen["attempt_trace"]
    assert not [s for s in seen["spans"] if s["scope"].startswith("fastapi")]
