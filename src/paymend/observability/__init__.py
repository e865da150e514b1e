"""Logging and metrics set-up.

Logs are JSON lines (structlog) with PII masked by a processor that runs on every event,
so no code path can log a phone number, an email, a token or a card number in clear. The
standard library's loggers (uvicorn, SQLAlchemy, asyncio) go through the same pipeline.
An exception is logged as its type and where it was raised, never its message: messages
carry data (SQL parameters, request values, a provider's answer).
Metrics are Prometheus, prefixed `paymend_`. Trace ids and spans are
observability/tracing.py.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import traceback
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from types import TracebackType
from typing import Any, TypeVar

import orjson
import structlog
from prometheus_client import Counter, Histogram

from paymend.domain.card_data import is_forbidden_name
from paymend.domain.card_text import MIN_PAN_DIGITS, mask_card_numbers
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
SLOW_CLIENTS = Counter(
    "paymend_http_slow_clients_total",
    "Requests cut short by the server's limits: a request head or body too slow to "
    "arrive, or a connection over the limit",
    ["reason"],
)

Metric = TypeVar("Metric", Counter, Histogram)


def children(metric: Metric) -> Callable[..., Metric]:
    """`metric.labels`, each child kept by the label values it was asked with.
    prometheus_client works a child out again on every call (each value made a string,
    a lock taken, its dict looked up), and a payment asks for six, the same few children
    every time. Children are never removed, so a kept one is always the metric's own."""
    return cache(metric.labels)


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
    """structlog processor: mask PII by key, mask card numbers in every string and key.

    Most fields of a line are short strings and small numbers under keys seen on every
    line: what a key calls for is looked up once (`_KEY_RULES`), and a string or an
    integer too short to hold a card number is passed as it is."""
    masked: dict[str, Any] = {}
    for k, v in event.items():
        key = k if type(k) is str else str(k)
        rule = _KEY_RULES.get(key) or _key_rule(key)
        kind = type(v)
        if not rule.plain:
            masked[rule.masked] = _mask_value(key, v)
        elif kind is str:
            masked[rule.masked] = v if len(v) < MIN_PAN_DIGITS else mask_card_numbers(v)
        elif (kind is int and -_NO_PAN < v < _NO_PAN) or v is None or kind is bool:
            masked[rule.masked] = v
        else:
            masked[rule.masked] = _mask_value(key, v)
    return masked


@dataclass(frozen=True, slots=True)
class _KeyRule:
    masked: str  # the key as logged
    plain: bool  # no masker and not a card-data name: only the value's content matters


_KEY_RULES: dict[str, _KeyRule] = {}
_KEY_RULES_MAX = 4096


def _key_rule(key: str) -> _KeyRule:
    """What `key` calls for. Kept only for keys that cannot hold a card number
    themselves, so the table never holds one; bounded, as keys can come from data."""
    rule = _KeyRule(_mask_key(key), key.lower() not in _MASKERS and not is_forbidden_name(key))
    if rule.masked == key and len(_KEY_RULES) < _KEY_RULES_MAX:
        _KEY_RULES[key] = rule
    return rule


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
    if isinstance(value, int) and -_NO_PAN < value < _NO_PAN:
        return value  # fewer digits than any card number
    if isinstance(value, int | float):
        text = str(value)
        masked = mask_card_numbers(text)
        return value if masked == text else masked
    if isinstance(value, Mapping):
        return {_mask_key(str(k)): _mask_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_mask_value(key, v) for v in value]
    return value


_NO_PAN = 10**11  # integers below this have fewer than 12 digits

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
_FRAMES = 8  # the innermost frames of a traceback worth logging


def summarize_exception(
    _logger: Any, _name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: `exc_info` becomes `error_type` (with `error_causes`, the
    types of the exceptions it was raised from) and `error_at`, the innermost frames as
    file:line:function. Never the message or the locals."""
    event.pop("stack_info", None)
    info = _exc_info(event.pop("exc_info", None))
    if info is None:
        return event
    etype, value, tb = info
    event["error_type"] = _type_name(etype)
    causes: list[str] = []
    seen = {id(value)}
    link = value.__cause__ or value.__context__
    while link is not None and id(link) not in seen and len(causes) < 5:
        seen.add(id(link))
        causes.append(_type_name(type(link)))
        link = link.__cause__ or link.__context__
    if causes:
        event["error_causes"] = causes
    frames = [
        f"{_short_path(frame.f_code.co_filename)}:{line}:{frame.f_code.co_name}"
        for frame, line in traceback.walk_tb(tb)
    ]
    event["error_at"] = frames[-_FRAMES:]
    return event


def _exc_info(raw: Any) -> ExcInfo | None:
    if raw is None or raw is False:
        return None
    if raw is True:
        current = sys.exc_info()
        if current[0] is None or current[1] is None:
            return None
        return current[0], current[1], current[2]
    if isinstance(raw, BaseException):
        return type(raw), raw, raw.__traceback__
    if isinstance(raw, tuple) and len(raw) == 3 and raw[1] is not None:
        return raw[0], raw[1], raw[2]
    return None


def _type_name(etype: type[BaseException]) -> str:
    module = etype.__module__
    return etype.__qualname__ if module == "builtins" else f"{module}.{etype.__qualname__}"


def _short_path(filename: str) -> str:
    for marker in ("site-packages/", "src/"):
        _, found, rest = filename.rpartition(marker)
        if found:
            return rest
    return filename.rsplit("/", 1)[-1]


def _first_line(
    _logger: Any, _name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Foreign (standard library) records keep the first line of their message: asyncio
    and others append reprs of tasks and exceptions, with their messages, below it."""
    text = event.get("event")
    if isinstance(text, str):
        event["event"] = text.split("\n", 1)[0].strip()
    return event


def render_json(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> str:
    """structlog processor: the line as JSON, keys sorted, with orjson (a fifth of
    the standard library's cost). What orjson does not write itself (a dataclass, a
    datetime, any other object) is its `repr`, as structlog's JSONRenderer writes it;
    an integer too wide for orjson goes through the standard library."""
    try:
        return orjson.dumps(event, default=_unjsonable, option=_ORJSON_OPTIONS).decode()
    except orjson.JSONEncodeError:
        return json.dumps(
            event, sort_keys=True, default=_unjsonable, ensure_ascii=False, separators=(",", ":")
        )


_ORJSON_OPTIONS = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_NON_STR_KEYS
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
)


def _unjsonable(value: Any) -> Any:
    hook = getattr(value, "__structlog__", None)
    return hook() if callable(hook) else repr(value)


class UtcStamp:
    """structlog processor: `timestamp`, the time of the line in UTC as ISO 8601 with
    microseconds, `2026-12-04T16:20:01.000123Z`. structlog's TimeStamper builds a
    datetime and formats every field for each line, 1.9 us; here the text of the
    second is made once a second and the microseconds appended, 0.5 us, and a line on
    a whole second keeps its `.000000` (isoformat leaves it out)."""

    __slots__ = ("_ns", "_second")

    def __init__(self, ns: Callable[[], int] = time.time_ns) -> None:
        self._ns = ns
        self._second: tuple[int, str] = (-1, "")

    def __call__(
        self, _logger: Any, _name: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        second, micros = divmod(self._ns() // 1000, 1_000_000)
        known = self._second
        if known[0] != second:
            text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            self._second = known = (second, text)
        event["timestamp"] = f"{known[1]}.{micros:06d}Z"
        return event


_configured = False
_generation = 0  # configure_logging's calls: a logger binds again after each
_STDLIB_NOISY = ("sqlalchemy", "alembic")  # INFO there is every statement


class _JsonHandler(logging.Handler):
    """Writes standard-library records, formatted by structlog, through structlog's
    PrintLogger, so both share one lock per stream and lines never interleave."""

    def __init__(self, stream: Any) -> None:
        super().__init__()
        self._out = structlog.PrintLogger(stream)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._out.msg(self.format(record))
        except Exception:  # noqa: BLE001 - logging must never raise into the caller
            self.handleError(record)


def configure_logging(level: str = "INFO", stream: Any = None) -> None:
    """JSON logs to stdout (or `stream`), masked; the standard library's loggers
    (uvicorn, SQLAlchemy, asyncio) are routed through the same processors."""
    global _configured, _generation
    out = stream or sys.stdout
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    # the time stamp is added after the masking: it is ours, never data to mask
    tail: list[Any] = [summarize_exception, mask_event, UtcStamp(), render_json]
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            *tail,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    handler = _JsonHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                _first_line,
                structlog.stdlib.add_logger_name,
                structlog.processors.add_log_level,
            ],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _JsonHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    for name in _STDLIB_NOISY:
        logging.getLogger(name).setLevel(max(numeric, logging.WARNING))
    logging.captureWarnings(True)
    _configured = True
    _generation += 1


class _Logger:
    """A module's logger, bound once per configuration. structlog's own proxy binds a
    new logger on every call unless told to cache it, and a cached one would keep the
    stream and level of the first configuration (tests configure again)."""

    __slots__ = ("_bound", "_name", "_seen")

    def __init__(self, name: str) -> None:
        self._name = name
        self._bound: Any = None
        self._seen = -1

    def __getattr__(self, method: str) -> Any:
        if self._seen != _generation:
            self._bound = structlog.get_logger(self._name).bind()
            self._seen = _generation
        return getattr(self._bound, method)


def get_logger(name: str) -> Any:
    return _Logger(name)
