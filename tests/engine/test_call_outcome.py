"""A provider call's outcome (engine/calls.py `call`) carries when the call ended and
how long it took, on each of its four endings: an answer, a timeout, a failed
connection and a connector that crashed. Health counts the call at `ended_at`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import pytest

from paymend.domain.payment import AttemptStatus
from paymend.engine.calls import CallOutcome, call
from paymend.engine.clock import LoopClock
from paymend.engine.virtual_time import run_virtual
from paymend.providers.base import ProviderConnectionError, ProviderOutcome, ProviderResult


async def _answers_after(seconds: float) -> ProviderResult:
    await asyncio.sleep(seconds)
    return ProviderResult(ProviderOutcome.SUCCEEDED, "00", "Approved", "ref-1")


async def _refused_after(seconds: float) -> ProviderResult:
    await asyncio.sleep(seconds)
    raise ProviderConnectionError("CONNECT_ERROR", "connection refused", sent=False)


async def _crashes_after(seconds: float) -> ProviderResult:
    await asyncio.sleep(seconds)
    raise KeyError("a connector bug")


@pytest.mark.parametrize(
    ("provider", "took", "status", "code"),
    [
        (_answers_after, 0.25, AttemptStatus.SUCCEEDED, "00"),
        (_answers_after, 30.0, AttemptStatus.UNKNOWN, "TIMEOUT"),  # cut at the 2 s timeout
        (_refused_after, 0.5, AttemptStatus.FAILED, "CONNECT_ERROR"),
        (_crashes_after, 0.75, AttemptStatus.UNKNOWN, "ADAPTER_ERROR"),
    ],
)
def test_every_ending_carries_its_end_and_latency(
    provider: Callable[[float], Awaitable[ProviderResult]],
    took: float,
    status: AttemptStatus,
    code: str,
) -> None:
    clock = LoopClock()

    async def scenario() -> tuple[datetime, CallOutcome, datetime]:
        started = clock.now()
        outcome = await call(clock, 2.0, provider(took))
        return started, outcome, clock.now()

    started, outcome, after = run_virtual(scenario())
    ran = min(took, 2.0)
    assert outcome.status is status and outcome.raw_code == code
    assert outcome.latency_ms == round(ran * 1000)
    assert outcome.ended_at == started + timedelta(seconds=ran) == after
