"""Trace ids: W3C Trace Context through OpenTelemetry, so a shop's own tracing joins
paymend's. Spans are recorded only when they are exported (`OTEL_TRACES_EXPORTER=otlp`,
or a provider with an exporter installed before paymend starts); without one each
request still carries a trace and a span id (`server_span`), and none of them reads as
a card number, so the log masking never hides an id a line is searched by."""

from __future__ import annotations

import os
import re
from contextlib import AbstractContextManager
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context, attach, detach
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

from paymend.domain.card_text import mask_card_numbers


class CardFreeIds(RandomIdGenerator):
    """Random trace and span ids without a run of digits that reads as a card number
    (about 1 in 1,700 random trace ids has one): the log masking, which spares no
    string, never hides an id a log line is searched by."""

    def generate_trace_id(self) -> int:
        while True:
            value = super().generate_trace_id()
            if not id_holds_card_number(format(value, "032x")):
                return value

    def generate_span_id(self) -> int:
        while True:
            value = super().generate_span_id()
            if not id_holds_card_number(format(value, "016x")):
                return value


# a hex id has no separators: only twelve digits in a row can begin a card number
_TWELVE_DIGITS = re.compile("[0-9]{12}")


def id_holds_card_number(hex_id: str) -> bool:
    """The log masking would hide part of this hex id."""
    return _TWELVE_DIGITS.search(hex_id) is not None and mask_card_numbers(hex_id) != hex_id


EXPORTERS = ("otlp", "none")  # the values of OTEL_TRACES_EXPORTER paymend understands


class TracingSettingInvalid(ValueError):
    """An OpenTelemetry environment variable paymend cannot follow: the server does not
    start rather than run without the traces it was asked for."""


def configure_tracing() -> None:
    """Export spans when `OTEL_TRACES_EXPORTER=otlp`: an SDK tracer provider (card-free
    ids) with OTLP over HTTP/protobuf, to `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or
    `OTEL_EXPORTER_OTLP_ENDPOINT` (OpenTelemetry's own variables, read by its exporter;
    default http://localhost:4318/v1/traces), spans sent in batches off the request path.
    Unset or `none`: no provider, so neither paymend nor FastAPI builds spans nobody
    reads; requests still carry valid trace ids (`server_span`). A provider someone
    else installed first (`opentelemetry-instrument`) is left as it is."""
    wanted = [
        name.strip().lower()
        for name in os.environ.get("OTEL_TRACES_EXPORTER", "none").split(",")
        if name.strip()
    ]
    unknown = [name for name in wanted if name not in EXPORTERS]
    if unknown:
        raise TracingSettingInvalid(
            f"OTEL_TRACES_EXPORTER={os.environ['OTEL_TRACES_EXPORTER']!r}: paymend exports "
            f"spans by 'otlp' (HTTP/protobuf) or not at all ('none'), not {', '.join(unknown)}"
        )
    if "otlp" not in wanted:
        return
    protocol = os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "")
    ).strip()
    if protocol not in ("", "http/protobuf"):
        raise TracingSettingInvalid(
            f"OTLP protocol {protocol!r}: paymend sends spans over 'http/protobuf' only"
        )
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(id_generator=CardFreeIds())
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)


def tracer() -> trace.Tracer:
    return trace.get_tracer("paymend")


_IDS = CardFreeIds()


def exporting() -> bool:
    """Does a span go anywhere? Only when a span processor (an exporter) was added to
    the SDK provider; without one the SDK would build, time and drop every span."""
    provider = trace.get_tracer_provider()
    active = getattr(provider, "_active_span_processor", None)
    return bool(getattr(active, "_span_processors", ()))


def server_span(name: str, parent: Context) -> AbstractContextManager[Any]:
    """The span of one request: a recorded one when spans are exported; else only its
    ids (the caller's trace or a new one, a new span id), current for the request, so
    trace ids in logs, attempts and the `X-Trace-Id` header stay valid at no SDK cost."""
    if exporting():
        return tracer().start_as_current_span(name, context=parent, kind=trace.SpanKind.SERVER)
    caller = trace.get_current_span(parent).get_span_context()
    trace_id = caller.trace_id if caller.is_valid else _IDS.generate_trace_id()
    ids = trace.SpanContext(
        trace_id, _IDS.generate_span_id(), is_remote=False, trace_flags=caller.trace_flags
    )
    return _Current(trace.NonRecordingSpan(ids))


class _Current:
    """A span that records nothing, current while the request runs: what
    `trace.use_span` does, without its generator and its exception hooks, which only a
    recording span uses."""

    __slots__ = ("_span", "_token")

    def __init__(self, span: trace.Span) -> None:
        self._span = span

    def __enter__(self) -> trace.Span:
        self._token = attach(trace.set_span_in_context(self._span))
        return self._span

    def __exit__(self, *_exc: object) -> None:
        detach(self._token)


def current_trace_id() -> str | None:
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None
