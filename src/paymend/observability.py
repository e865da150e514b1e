"""Logging, metrics and tracing set-up.

Logs are JSON lines (structlog) with PII masked by a processor that runs on every event,
so no code path can log a phone number, an email, a token or a card number in clear.
Metrics are Prometheus, prefixed `paymend_`. Trace ids follow W3C Trace Context through
OpenTelemetry, so a shop's own tracing joins paymend's.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import Counter, Histogram

from paymend.domain.card_data import is_forbidden_name, mask_card_numbers
from paymend.domain.masking import mask_email, mask_phone, mask_token

PAYMENTS = Counter(
    "paymend_payments_total", "Payments that reached a status", ["status", "provider"]
)
ATTEMPTS = Counter(
    "paymend_attempts_total",
    "Provider calls by outcome and raw code",
    ["provider", "outcome", "raw_code"],
)
ATTEMPT_LATENCY = Histogram(
    "paymend_attempt_latency_seconds",
    "Latency of provider calls",
    ["provider"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30),
)
OPS_ALERTS = Counter(
    "paymend_ops_alerts_total",
    "Playbook alerts to ops (page on its rate: Prometheus Alertmanager, Grafana)",
    ["playbook", "severity"],
)
REQUESTS = Counter("paymend_http_requests_total", "API requests", ["method", "route", "status"])
REQUEST_LATENCY = Histogram(
    "paymend_http_request_latency_seconds", "API request latency", ["method", "route"]
)

_MASKERS = {
    "phone": mask_phone,
    "email": mask_email,
    "token": mask_token,
    "payment_token": mask_token,
    "authorization": mask_token,
    "api_key": mask_token,
}


def mask_event(
    _logger: Any, _name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: mask PII by key, mask card numbers in every string and key."""
    return {_mask_key(str(k)): _mask_value(str(k), v) for k, v in event.items()}


def _mask_key(key: str) -> str:
    return mask_card_numbers(key)


def _mask_value(key: str, value: Any) -> Any:
    masker = _MASKERS.get(key.lower())
    if masker is not None and isinstance(value, str):
        return masker(value)
    if is_forbidden_name(key):
        return "[removed]"
    if isinstance(value, str):
        return mask_card_numbers(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        text = str(value)
        masked = mask_card_numbers(text)
        return value if masked == text else masked
    if isinstance(value, Mapping):
        return {_mask_key(str(k)): _mask_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_mask_value(key, v) for v in value]
    return value


_configured = False


def configure_logging(level: str = "INFO", stream: Any = None) -> None:
    """JSON logs to stdout (or `stream`), masked."""
    global _configured
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            mask_event,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(sort_keys=True),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stdout),
        cache_logger_on_first_use=False,
    )
    _configured = True


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)


def configure_tracing() -> None:
    """Install an SDK tracer provider so spans get real ids (export is configured by
    the standard OTEL_* variables when an exporter package is installed)."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(TracerProvider())


def tracer() -> trace.Tracer:
    return trace.get_tracer("paymend")


def current_trace_id() -> str | None:
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None
