"""Every log line is JSON through one masked pipeline, paymend's and the standard
library's alike; an exception is logged as its type and where it was raised, never its
message (which carries data: SQL parameters, request values)."""

from __future__ import annotations

import asyncio
import gc
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram

from paymend.domain.card_text import mask_card_numbers
from paymend.observability import UtcStamp, children, get_logger
from paymend.observability.tracing import CardFreeIds
from tests.logs import captured


@dataclass(frozen=True)
class Failure:
    code: str


SECRET = "tok_live_secret_5e5e and 4242 4242 4242 4242"
# what of SECRET no line may hold, even masked (a bare "4242" could be in a time stamp's
# microseconds or a trace id)
LEAKS = ("tok_live", "secret_5e5e", "4242 4242", "****4242")


def test_an_exception_is_logged_as_its_type_causes_and_place_only() -> None:
    log = get_logger("paymend.worker")
    with captured() as logs:
        try:
            try:
                raise KeyError(SECRET)
            except KeyError as exc:
                raise RuntimeError(SECRET) from exc
        except RuntimeError:
            log.exception("job_failed", job_id="job_1")
    (line,) = logs.lines()
    assert line["event"] == "job_failed" and line["level"] == "error"
    assert line["error_type"] == "RuntimeError"
    assert line["error_causes"] == ["KeyError"]
    assert line["error_at"][-1].startswith("test_observability.py:")
    assert line["error_at"][-1].endswith(
        ":test_an_exception_is_logged_as_its_type_causes_and_place_only"
    )
    assert not [part for part in LEAKS if part in logs.text]
    assert "Traceback" not in logs.text


def test_standard_library_loggers_write_the_same_masked_json() -> None:
    with captured() as logs:
        try:
            raise ValueError(SECRET)
        except ValueError as exc:
            logging.getLogger("uvicorn.error").error(
                "Exception in ASGI application\n", exc_info=exc
            )
        logging.getLogger("sqlalchemy.pool").warning("pool reset for order 4111111111111111")
        logging.getLogger("sqlalchemy.engine").info("SELECT %s", SECRET)  # below its level
    uvicorn_line, pool_line = logs.lines()
    assert uvicorn_line["logger"] == "uvicorn.error"
    assert uvicorn_line["event"] == "Exception in ASGI application"
    assert uvicorn_line["error_type"] == "ValueError"
    assert pool_line == {**pool_line, "level": "warning", "logger": "sqlalchemy.pool"}
    assert pool_line["event"] == "pool reset for order [card ****1111]"
    assert "tok_live" not in logs.text and "Traceback" not in logs.text


def test_asyncio_reports_keep_their_first_line_only() -> None:
    async def fail() -> None:
        raise ValueError(SECRET)

    async def main() -> None:
        task = asyncio.ensure_future(fail())
        await asyncio.wait([task])  # finished, its exception never retrieved
        del task
        gc.collect()

    gc.collect()  # an earlier test's unretrieved task must not report inside ours
    with captured() as logs:
        asyncio.run(main())
    (line,) = [
        x
        for x in logs.lines()
        if x.get("logger") == "asyncio" and x.get("error_type") == "ValueError"
    ]
    assert line["event"] == "Task exception was never retrieved"
    assert line["error_type"] == "ValueError"
    assert not [part for part in LEAKS if part in logs.text]


def test_card_numbers_are_masked_in_values_keys_and_numbers() -> None:
    log = get_logger("paymend.api")
    with captured() as logs:
        log.info(
            "anything",
            order_id="4111111111111111",
            amount=4111111111111111,
            nested={"５５５５ ５５５５ ５５５５ ４４４４": ["6200 0000 0000 0005"]},
            cvv="123",
        )
    (line,) = logs.lines()
    assert line["order_id"] == "[card ****1111]"
    assert line["amount"] == "[card ****1111]"
    assert line["nested"] == {"[card ****4444]": ["[card ****0005]"]}
    assert line["cvv"] == "[removed]"


def test_trace_and_span_ids_never_read_as_card_numbers() -> None:
    """One random trace id in about 1,700 holds a digit run the log masking would hide,
    and with it the id ops search the logs by."""
    ids = CardFreeIds()
    for _ in range(20_000):
        trace_id = format(ids.generate_trace_id(), "032x")
        span_id = format(ids.generate_span_id(), "016x")
        assert mask_card_numbers(trace_id) == trace_id
        assert mask_card_numbers(span_id) == span_id


def test_a_line_keeps_any_value_and_a_logger_follows_a_new_configuration() -> None:
    log = get_logger("paymend.api")  # bound before the capture configures logging again
    log.info("before_capture")
    when = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
    with captured() as logs:
        log.info(
            "odd_values",
            message="支付已取消",
            wide=2**70,
            when=when,
            failure=Failure("insufficient_funds"),
        )
    (line,) = logs.lines()  # the line reached the new stream, nothing else did
    assert line["message"] == "支付已取消" and "支付已取消" in logs.text  # UTF-8, not \\u escapes
    assert line["wide"] == 2**70  # wider than 64 bits: the standard library wrote it
    assert line["when"] == repr(when)
    assert line["failure"] == "Failure(code='insufficient_funds')"
    assert list(line) == sorted(line)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 4_102_444_800 * 10**9),  # 1970 to 2100, in nanoseconds
    st.lists(st.integers(0, 3 * 10**9), min_size=1, max_size=6),
)
def test_a_lines_time_stamp_is_its_utc_time_to_the_microsecond(
    start: int, steps: list[int]
) -> None:
    """UtcStamp writes the time as isoformat would, with microseconds always, for any
    sequence of readings, within a second and across seconds (its text of the second is
    made once a second)."""
    readings = [start]
    for step in steps:
        readings.append(readings[-1] + step)
    clock = iter(readings)
    stamp = UtcStamp(lambda: next(clock))
    for ns in readings:
        at = _EPOCH + timedelta(microseconds=ns // 1000)
        expected = at.isoformat(timespec="microseconds").replace("+00:00", "Z")
        assert stamp(None, "info", {})["timestamp"] == expected


def test_every_line_carries_the_time_it_was_written() -> None:
    log = get_logger("paymend.api")
    with captured() as logs:
        before = datetime.now(UTC)
        log.info("stamped")
        logging.getLogger("uvicorn.error").warning("stamped too")
        after = datetime.now(UTC)
    stamps = [datetime.fromisoformat(line["timestamp"]) for line in logs.lines()]
    assert len(stamps) == 2
    assert all(before - timedelta(microseconds=1) <= s <= after for s in stamps)


def test_a_kept_child_counts_under_its_own_labels_in_the_registry() -> None:
    registry = CollectorRegistry()
    calls = Counter("calls_total", "calls", ["provider", "outcome"], registry=registry)
    latency = Histogram("latency_seconds", "latency", ["provider"], registry=registry)
    calls_by, latency_by = children(calls), children(latency)

    for provider, outcome in [("sim_a", "succeeded"), ("sim_b", "failed"), ("sim_a", "succeeded")]:
        calls_by(provider, outcome).inc()
    latency_by("sim_a").observe(0.2)
    latency_by("sim_a").observe(0.4)

    assert calls_by("sim_a", "succeeded") is calls.labels("sim_a", "succeeded")
    assert (
        registry.get_sample_value("calls_total", {"provider": "sim_a", "outcome": "succeeded"}) == 2
    )
    assert registry.get_sample_value("calls_total", {"provider": "sim_b", "outcome": "failed"}) == 1
    assert (
        registry.get_sample_value("calls_total", {"provider": "sim_b", "outcome": "succeeded"})
        is None
    )
    assert registry.get_sample_value("latency_seconds_count", {"provider": "sim_a"}) == 2
    assert registry.get_sample_value("latency_seconds_sum", {"provider": "sim_a"}) == 0.2 + 0.4
