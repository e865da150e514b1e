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
    RefundRequest,
    SettlementLine,
)
from paymend.providers.simulator import ChargeState, Ledger, LedgerCharge

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


class LabProvider:
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
        self.calls.append(
            Call(now, self.name, request.method, request.bank, request.region, "authorize")
        )
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
                raise ProviderConnectionError("CONNECTION_REFUSED", "outage", sent=False)
            if fault.kind == "timeout":
                if self._rng.random() < fault.charged:
                    self._book(request, ProviderOutcome.SUCCEEDED, "APPROVED")
                await self._wait(HANG_S)
                raise ProviderConnectionError("READ_TIMEOUT", "no answer", sent=True)
            if fault.kind in ("error", "rate_limit"):
                code = fault.code or "RATE_LIMITED"
                await self._wait(latency)
                return ProviderResult(ProviderOutcome.ERROR, code, code.lower())
            if fault.kind == "credentials_expired":
                if id(fault) not in self._expired_by:  # the token expires at the onset
                    self._expired_by.add(id(fault))
                    self._expired = True
                if self._expired:  # until paymend refreshes it
                    await self._wait(latency)
                    return ProviderResult(ProviderOutcome.ERROR, "TOKEN_EXPIRED", "token expired")
        if self._rng.random() < self.channel.technical_error_rate:
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

    async def confirm(self, request: QueryRequest) -> ProviderResult:
        charge = self.ledger.get(request.idempotency_key)
        await self._wait(self._latency([]))
        if charge is None:
            return ProviderResult(ProviderOutcome.NOT_FOUND, "TRADE_NOT_FOUND", "no such charge")
        if charge.state is ChargeState.AWAITING_AUTHENTICATION:
            charge.state = ChargeState.CHARGED
            charge.result = ProviderResult(
                ProviderOutcome.SUCCEEDED, "APPROVED", "approved", charge.reference
            )
            self.ledger.put(charge)
        return charge.result or ProviderResult(ProviderOutcome.ERROR, "SYSTEM_ERROR", "no result")

    async def refund(self, request: RefundRequest) -> ProviderResult:
        await self._wait(self._latency([]))
        earlier = self.ledger.refund_get(request.idempotency_key)
        if earlier is not None:
            return ProviderResult(ProviderOutcome.SUCCEEDED, "REFUNDED", "refunded", earlier[0])
        charge = self.ledger.by_reference(request.charge_reference)
        if charge is None or charge.state is not ChargeState.CHARGED:
            return ProviderResult(ProviderOutcome.DECLINED, "TRADE_NOT_FOUND", "no such charge")
        if request.amount.minor > charge.amount.minor - charge.refunded:
            return ProviderResult(ProviderOutcome.DECLINED, "REFUND_AMOUNT_EXCEEDED", "too much")
        charge.refunded += request.amount.minor
        self.ledger.put(charge)
        ref = self._next_ref("rf")
        self.ledger.refund_put(request.idempotency_key, ref, request.amount.minor)
        return ProviderResult(ProviderOutcome.SUCCEEDED, "REFUNDED", "refunded", ref)

    async def refresh_credentials(self) -> None:
        self._expired = False

    async def settlements(self) -> list[SettlementLine]:
        return [
            SettlementLine(c.reference, c.idempotency_key, c.payment_id, c.amount, c.refunded)
            for c in self.ledger.all_charges()
            if c.state is ChargeState.CHARGED and c.reference.startswith(f"ch_{self.name}_")
        ]

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

    async def _wait(self, seconds: float) -> None:
        if seconds > 0:
            await self.clock.sleep(seconds)

    def _book(self, request: ChargeRequest, outcome: ProviderOutcome, code: str) -> ProviderResult:
        state = {
            ProviderOutcome.SUCCEEDED: ChargeState.CHARGED,
            ProviderOutcome.REQUIRES_ACTION: ChargeState.AWAITING_AUTHENTICATION,
        }.get(outcome, ChargeState.DECLINED)
        ref = self._next_ref("ch")
        result = ProviderResult(outcome, code, code.lower(), ref)
        self.ledger.put(
            LedgerCharge(
                ref,
                request.idempotency_key,
                request.payment_id,
                request.amount,
                state,
                result=result,
                booked_at=self.clock.monotonic(),
            )
        )
        return result

    def _next_ref(self, prefix: str) -> str:
        self._refs += 1
        return f"{prefix}_{self.name}_{self._refs:08d}"
