"""Trace ids: W3C Trace Context through OpenTelemetry, so a shop's own tracing joins
paymend's. Spans are recorded only when an exporter is configured; without one each
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


def configure_tracing() -> None:
    """Install an SDK tracer provider (card-free ids) when spans are to be exported:
    `OTEL_TRACES_EXPORTER` names an exporter, whose set-up adds it to the provider.
    Without one, no provider is installed, so neither paymend nor FastAPI's own
    telemetry builds spans nobody reads; requests still carry valid trace ids
    (`server_span`)."""
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "none").strip().lower()
    if exporter in ("", "none"):
        return
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(TracerProvider(id_generator=CardFreeIds()))


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
