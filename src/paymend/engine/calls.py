"""Calling a provider: timeout, latency, and the translation of what happened into an
attempt outcome. A timeout or a connection lost after sending is `unknown`, never
`failed`: the money may have moved, and only a status query can tell."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from paymend.domain.clock import Clock
from paymend.domain.payment import Attempt, AttemptStatus, Payment
from paymend.observability import ATTEMPT_LATENCY, ATTEMPTS, children, get_logger
from paymend.providers.base import (
    ChargeRequest,
    ClosesUnpaid,
    ConfirmsAuthentication,
    CredentialRefresh,
    Provider,
    ProviderConnectionError,
    ProviderOutcome,
    ProviderResult,
    QueryRequest,
    StatusQuery,
)

log = get_logger("paymend.engine")
_ATTEMPTS, _ATTEMPT_LATENCY = children(ATTEMPTS), children(ATTEMPT_LATENCY)  # every call
NO_STATUS_QUERY = "NO_STATUS_QUERY"  # the provider offers no status query: still unknown

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
    next_action: Mapping[str, str] | None = None  # requires_action: what the customer does
    ended_at: datetime | None = None  # when the call ended: health counted it then


async def call(
    clock: Clock, timeout_s: float, provider_call: Awaitable[ProviderResult]
) -> CallOutcome:
    start = clock.monotonic()

    def elapsed() -> int:
        return round((clock.monotonic() - start) * 1000)

    return await _call(timeout_s, provider_call, elapsed, clock.now)


async def _call(
    timeout_s: float,
    provider_call: Awaitable[ProviderResult],
    elapsed: Callable[[], int],
    now: Callable[[], datetime],
) -> CallOutcome:
    """The call's outcome: its latency by `elapsed`, its end by `now`, read last. Built
    whole, with its end: a copy by `replace` to add it cost 2.5 µs a call."""
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
            ended_at=now(),
        )
    except ProviderConnectionError as exc:
        status = AttemptStatus.UNKNOWN if exc.sent else AttemptStatus.FAILED
        return CallOutcome(
            status, exc.raw_code, exc.raw_message, None, elapsed(), True, ended_at=now()
        )
    except Exception as exc:
        log.exception("provider_call_crashed", error=type(exc).__name__)
        return CallOutcome(
            AttemptStatus.UNKNOWN,
            "ADAPTER_ERROR",
            type(exc).__name__,
            None,
            elapsed(),
            True,
            ended_at=now(),
        )
    return CallOutcome(
        _STATUS[result.outcome],
        result.raw_code,
        result.raw_message,
        result.reference,
        elapsed(),
        result.outcome in (ProviderOutcome.ERROR, ProviderOutcome.PENDING),
        answered=result.outcome,
        next_action=_next_action(result),
        ended_at=now(),
    )


def _next_action(result: ProviderResult) -> Mapping[str, str] | None:
    """A redirect or QR code the provider answered for the customer (`raw["next_action"]`:
    `{"type": "redirect" | "scan_qr_code", "url": …}`), only with `requires_action`."""
    found = result.raw.get("next_action")
    if result.outcome is not ProviderOutcome.REQUIRES_ACTION or not isinstance(found, Mapping):
        return None
    return {str(k): str(v) for k, v in found.items()}


# What a status query's answer says of the charge. Only the provider saying it has no
# such charge, or that it declined it, means no money moved; an error, a timeout or a
# refused connection while asking means we still do not know.
_QUERY_STATUS = {
    ProviderOutcome.SUCCEEDED: AttemptStatus.SUCCEEDED,
    ProviderOutcome.NOT_FOUND: AttemptStatus.FAILED,
    ProviderOutcome.DECLINED: AttemptStatus.FAILED,
    ProviderOutcome.REQUIRES_ACTION: AttemptStatus.REQUIRES_ACTION,  # waits for 3-D Secure
}


def told_status(result: ProviderResult) -> AttemptStatus:
    """What an answer about an earlier charge (a status query's, a notification's) says
    of it, as `query_call` reads it."""
    return _QUERY_STATUS.get(result.outcome, AttemptStatus.UNKNOWN)


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


class Caller:
    """The engine's provider calls: each bounded by its timeout, then counted, timed
    and logged as one `provider_call` line. The attempt id is the idempotency key."""

    def __init__(self, providers: Mapping[str, Provider], clock: Clock) -> None:
        self.providers = providers
        self.clock = clock

    async def authorize(
        self,
        payment: Payment,
        attempt: Attempt,
        timeout_s: float,
        *,
        authenticated: bool = False,
        pay_by: datetime | None = None,
    ) -> CallOutcome:
        """Charge for the attempt. `pay_by`: the payment's deadline, after which a charge
        is no longer taken (a connector whose unpaid orders can expire ends them there)."""
        request = ChargeRequest(
            idempotency_key=attempt.idempotency_key,
            payment_id=payment.id,
            amount=payment.amount,
            method=payment.method,
            token=payment.token,
            bank=payment.bank,
            region=payment.region,
            metadata=payment.metadata,
            authenticated=authenticated,
            pay_by=pay_by,
        )
        provider = self.providers[attempt.provider]
        outcome = await call(self.clock, timeout_s, provider.authorize(request))
        self._observe(attempt, outcome, "authorize")
        return outcome

    async def query(self, attempt: Attempt, timeout_s: float) -> CallOutcome:
        """Ask the provider what became of the attempt's charge (query_call's statuses).
        A provider that cannot be asked (no StatusQuery) leaves the outcome unknown."""
        provider = self.providers[attempt.provider]
        if not isinstance(provider, StatusQuery):
            return CallOutcome(
                AttemptStatus.UNKNOWN,
                NO_STATUS_QUERY,
                f"{attempt.provider} cannot be asked what became of a charge",
                None,
                0,
                True,
            )
        queried = await query_call(
            self.clock,
            timeout_s,
            provider.query(
                QueryRequest(
                    attempt.idempotency_key, attempt.payment_id, sent_at=attempt.created_at
                )
            ),
        )
        self._observe(attempt, queried, "query")
        return queried

    async def requery(
        self, attempt: Attempt, outcome: CallOutcome, timeout_s: float
    ) -> CallOutcome:
        """Ask what became of the call whose `outcome` is uncertain; keep its raw answer.
        Only a clear answer (charged, or provably not) changes the outcome's status."""
        queried = await self.query(attempt, timeout_s)
        if queried.status not in (AttemptStatus.SUCCEEDED, AttemptStatus.FAILED):
            return outcome
        return replace(
            outcome,
            status=queried.status,
            reference=queried.reference or outcome.reference,
            query_code=queried.raw_code,
        )

    def confirms(self, channel: str) -> bool:
        """Can `channel` complete a charge it held for 3-D Secure (`confirm`)?"""
        return isinstance(self.providers.get(channel), ConfirmsAuthentication)

    async def confirm(
        self, attempt: Attempt, timeout_s: float, details: Mapping[str, str] | None = None
    ) -> CallOutcome:
        """Complete the charge the provider held for the customer's 3-D Secure (only for
        a provider that `confirms`), with what the customer's return brought (`details`)."""
        provider = self.providers[attempt.provider]
        if not isinstance(provider, ConfirmsAuthentication):
            raise TypeError(f"{attempt.provider} cannot confirm: check `confirms` first")
        request = QueryRequest(attempt.idempotency_key, attempt.payment_id, dict(details or {}))
        outcome = await call(self.clock, timeout_s, provider.confirm(request))
        self._observe(attempt, outcome, "confirm")
        return outcome

    def closes(self, channel: str) -> bool:
        """Can `channel` close a charge the customer has not paid (`close_unpaid`)?"""
        return isinstance(self.providers.get(channel), ClosesUnpaid)

    async def close(self, attempt: Attempt, timeout_s: float) -> CallOutcome:
        """Close the attempt's unpaid charge at the provider (only for a provider that
        `closes`); the outcome reads as a status query's (query_call's statuses)."""
        provider = self.providers[attempt.provider]
        if not isinstance(provider, ClosesUnpaid):
            raise TypeError(f"{attempt.provider} cannot close: check `closes` first")
        request = QueryRequest(attempt.idempotency_key, attempt.payment_id)
        outcome = await query_call(self.clock, timeout_s, provider.close_unpaid(request))
        self._observe(attempt, outcome, "close")
        return outcome

    async def refresh_credentials(self, channel: str) -> None:
        """Renew `channel`'s access token, if it is a provider that can (CredentialRefresh)."""
        provider = self.providers.get(channel)
        if isinstance(provider, CredentialRefresh):
            await provider.refresh_credentials()

    def code_map(self, channel: str) -> str:
        """Which code map classifies `channel`'s raw codes (failures/providers/)."""
        provider = self.providers.get(channel)
        return channel if provider is None else provider.code_map

    def _observe(self, attempt: Attempt, outcome: CallOutcome, operation: str) -> None:
        _ATTEMPTS(attempt.provider, outcome.status.value, outcome.raw_code or "").inc()
        _ATTEMPT_LATENCY(attempt.provider).observe(outcome.latency_ms / 1000)
        log.info(
            "provider_call",
            operation=operation,
            payment_id=attempt.payment_id,
            attempt_id=attempt.id,
            provider=attempt.provider,
            outcome=outcome.status.value,
            raw_code=outcome.raw_code,
            raw_message=outcome.raw_message,
            latency_ms=outcome.latency_ms,
            trace_id=attempt.trace_id,
        )
