"""Calling a provider: timeout, latency, and the translation of what happened into an
attempt outcome. A timeout or a connection lost after sending is `unknown`, never
`failed`: the money may have moved, and only a status query can tell."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass, replace

from paymend.domain.clock import Clock
from paymend.domain.payment import AttemptStatus
from paymend.observability import get_logger
from paymend.providers.base import ProviderConnectionError, ProviderOutcome, ProviderResult

log = get_logger("paymend.engine")

_STATUS = {
    ProviderOutcome.SUCCEEDED: AttemptStatus.SUCCEEDED,
    ProviderOutcome.DECLINED: AttemptStatus.FAILED,
    ProviderOutcome.ERROR: AttemptStatus.FAILED,
    ProviderOutcome.REQUIRES_ACTION: AttemptStatus.REQUIRES_ACTION,
    ProviderOutcome.NOT_FOUND: AttemptStatus.FAILED,
    ProviderOutcome.PENDING: AttemptStatus.UNKNOWN,
}


@dataclass(frozen=True, slots=True)
class CallOutcome:
    status: AttemptStatus
    raw_code: str | None
    raw_message: str | None
    reference: str | None
    latency_ms: int
    technical: bool  # the failure lies with the channel (not the payer): timeouts, errors
    query_code: str | None = None  # what a follow-up status query answered
    answered: ProviderOutcome | None = None  # the provider's own answer; None: no answer


async def call(
    clock: Clock, timeout_s: float, provider_call: Awaitable[ProviderResult]
) -> CallOutcome:
    start = clock.monotonic()

    def elapsed() -> int:
        return round((clock.monotonic() - start) * 1000)

    try:
        async with asyncio.timeout(timeout_s):
            result = await provider_call
    except TimeoutError:
        return CallOutcome(
            AttemptStatus.UNKNOWN,
            "TIMEOUT",
            f"no answer within {timeout_s:g}s",
            None,
            elapsed(),
            True,
        )
    except ProviderConnectionError as exc:
        status = AttemptStatus.UNKNOWN if exc.sent else AttemptStatus.FAILED
        return CallOutcome(status, exc.raw_code, exc.raw_message, None, elapsed(), True)
    except Exception as exc:
        log.exception("provider_call_crashed", error=type(exc).__name__)
        return CallOutcome(
            AttemptStatus.UNKNOWN, "ADAPTER_ERROR", type(exc).__name__, None, elapsed(), True
        )
    return CallOutcome(
        _STATUS[result.outcome],
        result.raw_code,
        result.raw_message,
        result.reference,
        elapsed(),
        result.outcome in (ProviderOutcome.ERROR, ProviderOutcome.PENDING),
        answered=result.outcome,
    )


# What a status query's answer says of the charge. Only the provider saying it has no
# such charge, or that it declined it, means no money moved; an error, a timeout or a
# refused connection while asking means we still do not know.
_QUERY_STATUS = {
    ProviderOutcome.SUCCEEDED: AttemptStatus.SUCCEEDED,
    ProviderOutcome.NOT_FOUND: AttemptStatus.FAILED,
    ProviderOutcome.DECLINED: AttemptStatus.FAILED,
    ProviderOutcome.REQUIRES_ACTION: AttemptStatus.REQUIRES_ACTION,  # waits for 3-D Secure
}


async def query_call(
    clock: Clock, timeout_s: float, provider_call: Awaitable[ProviderResult]
) -> CallOutcome:
    """A status query: `succeeded`, `failed` (provably not charged), `requires_action`
    (the charge waits for the customer's authentication) or `unknown`."""
    outcome = await call(clock, timeout_s, provider_call)
    status = (
        _QUERY_STATUS.get(outcome.answered, AttemptStatus.UNKNOWN)
        if outcome.answered
        else (AttemptStatus.UNKNOWN)
    )
    return replace(outcome, status=status)
