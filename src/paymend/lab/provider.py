"""The lab's providers: a simulated channel whose answers come from the scenario.

The payer's truth (insufficient funds, needs 3-D Secure, …) travels with the payment in
its metadata, invisible to the engine, and is the same on every channel. Faults apply to
calls whose channel, method, bank and region match their scope while they are active.
The ledger records every charge, so duplicate charges and money taken from customers
told "failed" are counted from the provider's side, not from paymend's word.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from paymend.domain.channel import Capabilities
from paymend.domain.clock import Clock
from paymend.lab.scenario import Channel, Fault
from paymend.providers.base import (
    ChargeRequest,
    ProviderConnectionError,
    ProviderOutcome,
    ProviderResult,
    QueryRequest,
)
from paymend.providers.simulator import Ledger, LedgerChannel

TRUTH_KEY = "lab_truth"  # metadata key carrying the payer's truth
HANG_S = 30.0
DECLINES = {
    "insufficient_funds": "INSUFFICIENT_FUNDS",
    "expired_card": "EXPIRED_CARD",
    "incorrect_details": "INCORRECT_DETAILS",
    "fraud": "SUSPECTED_FRAUD",
}


@dataclass(slots=True)
class Call:
    """One call a lab provider received: what the fault accounting needs."""

    t: float
    channel: str
    method: str
    bank: str | None
    region: str | None
    operation: str
    code: str | None = None  # set when the call failed technically


class LabProvider(LedgerChannel):
    code_map = "simulator"

    def __init__(
        self,
        name: str,
        channel: Channel,
        faults: list[Fault],
        clock: Clock,
        seed: int,
        ledger: Ledger,
    ) -> None:
        self.name = name
        self.channel = channel
        self.faults = [f for f in faults if f.kind != "payer" and f.channel in (None, name)]
        self.clock = clock
        self.ledger = ledger
        self.capabilities = Capabilities(methods=frozenset(channel.methods))
        self._rng = random.Random(f"{name}:{seed}")  # noqa: S311 - a simulation
        self._refs = 0
        self._expired = False  # credentials_expired: until refreshed
        self._expired_by: set[int] = set()
        self.calls: list[Call] = []
        self.cost_bps = channel.cost_bps

    # -- the Provider protocol ---------------------------------------------------------

    async def authorize(self, request: ChargeRequest) -> ProviderResult:
        now = self.clock.monotonic()
        call = Call(now, self.name, request.method, request.bank, request.region, "authorize")
        self.calls.append(call)
        active = self._active(now, request.method, request.bank, request.region)
        latency = self._latency(active)
        existing = self.ledger.get(request.idempotency_key)
        if existing is not None and existing.result is not None:
            await self._wait(latency)
            return existing.result
        for fault in active:
            if self._rng.random() >= fault.rate:
                continue
            if fault.kind == "outage":
                call.code = "CONNECTION_REFUSED"
                raise ProviderConnectionError("CONNECTION_REFUSED", "outage", sent=False)
            if fault.kind == "timeout":
                call.code = "TIMEOUT"
                if self._rng.random() < fault.charged:
                    self._book(request, ProviderOutcome.SUCCEEDED, "APPROVED")
                await self._wait(HANG_S)
                raise ProviderConnectionError("READ_TIMEOUT", "no answer", sent=True)
            if fault.kind in ("error", "rate_limit"):
                code = fault.code or "RATE_LIMITED"
                call.code = code
                await self._wait(latency)
                return ProviderResult(ProviderOutcome.ERROR, code, code.lower())
            if fault.kind == "credentials_expired":
                if id(fault) not in self._expired_by:  # the token expires at the onset
                    self._expired_by.add(id(fault))
                    self._expired = True
                if self._expired:  # until paymend refreshes it
                    call.code = "TOKEN_EXPIRED"
                    await self._wait(latency)
                    return ProviderResult(ProviderOutcome.ERROR, "TOKEN_EXPIRED", "token expired")
        if any(f.kind == "latency" for f in active) and latency > 3.0:
            call.code = "SLOW"  # past any checkout's patience: a technical symptom
        if self._rng.random() < self.channel.technical_error_rate:
            call.code = "SYSTEM_ERROR"
            await self._wait(latency)
            return ProviderResult(ProviderOutcome.ERROR, "SYSTEM_ERROR", "system error")
        truth = request.metadata.get(TRUTH_KEY, "ok")
        if truth in DECLINES:
            result = self._book(request, ProviderOutcome.DECLINED, DECLINES[truth])
        elif truth == "needs_authentication" and not request.authenticated:
            result = self._book(request, ProviderOutcome.REQUIRES_ACTION, "AUTHENTICATION_REQUIRED")
        else:
            result = self._book(request, ProviderOutcome.SUCCEEDED, "APPROVED")
        await self._wait(latency)
        return result

    async def query(self, request: QueryRequest) -> ProviderResult:
        now = self.clock.monotonic()
        charge = self.ledger.get(request.idempotency_key)
        active = self._active(now, None, None, None)
        if any(f.kind == "outage" for f in active):
            raise ProviderConnectionError("CONNECTION_REFUSED", "outage", sent=False)
        await self._wait(self._latency(active))
        if charge is None:
            return ProviderResult(ProviderOutcome.NOT_FOUND, "TRADE_NOT_FOUND", "no such charge")
        return charge.result or ProviderResult(ProviderOutcome.ERROR, "SYSTEM_ERROR", "no result")

    async def refresh_credentials(self) -> None:
        self._expired = False

    # -- internals ---------------------------------------------------------------------

    def _active(
        self, now: float, method: str | None, bank: str | None, region: str | None
    ) -> list[Fault]:
        return [
            f
            for f in self.faults
            if f.at <= now < f.end
            and (f.method is None or method is None or f.method == method)
            and (f.bank is None or bank is None or f.bank == bank)
            and (f.region is None or region is None or f.region == region)
        ]

    def _latency(self, active: list[Fault]) -> float:
        p50, p99 = self.channel.latency_ms.p50, self.channel.latency_ms.p99
        for f in active:
            if f.kind == "latency" and f.p50 is not None and f.p99 is not None:
                p50, p99 = f.p50, f.p99
        if p50 <= 0:
            return 0.0
        sigma = max(0.0, math.log(max(p99, p50) / p50) / 2.326)
        return self._rng.lognormvariate(math.log(p50), sigma) / 1000.0

    def _quiet_latency(self) -> float:
        return self._latency([])
