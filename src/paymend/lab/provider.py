"""The lab's providers: a simulated channel whose answers come from the scenario.

The payer's truth (insufficient funds, needs 3-D Secure, …) and the payment's arrival
number travel with the payment in its metadata, invisible to the engine. Every draw a
call makes is a pure function of (seed, payment, channel, attempt number on the channel)
(lab/draws.py) and its fate a pure function of those draws and the moment of the call
(lab/fate.py), so the oracle and the naive checkout can replay any call exactly.
The ledger records every charge, so duplicate charges and money taken from customers
told "failed" are counted from the provider's side, not from paymend's word.
"""

from __future__ import annotations

from dataclasses import dataclass

from paymend.domain.channel import Capabilities
from paymend.domain.clock import Clock
from paymend.lab.draws import CallDraws, call_draws, query_draw
from paymend.lab.fate import Answer, Fates
from paymend.lab.scenario import Scenario
from paymend.providers.base import (
    ChargeRequest,
    ProviderConnectionError,
    ProviderOutcome,
    ProviderResult,
    QueryRequest,
)
from paymend.providers.simulator import APPROVED, ChargeState, Ledger, LedgerChannel

TRUTH_KEY = "lab_truth"  # metadata key carrying the payer's truth
ARRIVAL_KEY = "lab_arrival"  # metadata key carrying the payment's arrival number
_OUTCOMES = {
    ChargeState.CHARGED: ProviderOutcome.SUCCEEDED,
    ChargeState.DECLINED: ProviderOutcome.DECLINED,
    ChargeState.AWAITING_AUTHENTICATION: ProviderOutcome.REQUIRES_ACTION,
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


@dataclass(frozen=True, slots=True)
class _Key:
    """Which payment an attempt (its idempotency key) belongs to, and its number on the
    channel: the key to its draws."""

    payment: int
    attempt: int


class LabProvider(LedgerChannel):
    code_map = "simulator"

    def __init__(
        self, name: str, scenario: Scenario, fates: Fates, clock: Clock, ledger: Ledger
    ) -> None:
        self.name = name
        self.channel = scenario.channels[name]
        self.seed = scenario.seed
        self.fates = fates
        self.clock = clock
        self.ledger = ledger
        self.capabilities = Capabilities(methods=frozenset(self.channel.methods))
        self.cost_bps = self.channel.cost_bps
        self._faults = len(scenario.faults)
        self._credentials = [
            f
            for f in scenario.faults
            if f.kind == "credentials_expired" and f.channel in (None, name)
        ]
        self._refs = 0
        self._expired = False  # credentials_expired: from the onset until refreshed
        self._expired_by: set[int] = set()
        self._keys: dict[str, _Key] = {}  # idempotency key -> payment, attempt number
        self._attempts: dict[int, int] = {}  # payment -> attempts seen on this channel
        self._queries: dict[str, int] = {}  # idempotency key -> status queries seen
        self.calls: list[Call] = []

    def draws(self, request: ChargeRequest) -> tuple[_Key, CallDraws]:
        """The attempt's place (payment, attempt number here) and its draws."""
        key = self._keys.get(request.idempotency_key)
        if key is None:
            n = int(request.metadata[ARRIVAL_KEY])
            self._attempts[n] = self._attempts.get(n, 0) + 1
            key = self._keys[request.idempotency_key] = _Key(n, self._attempts[n])
        return key, call_draws(self.seed, key.payment, self.name, key.attempt, self._faults)

    # -- the Provider protocol ---------------------------------------------------------

    async def authorize(self, request: ChargeRequest) -> ProviderResult:
        now = self.clock.monotonic()
        call = Call(now, self.name, request.method, request.bank, request.region, "authorize")
        self.calls.append(call)
        self._expire_credentials(now)
        _, draws = self.draws(request)
        fate = self.fates.call(
            self.name,
            now,
            request.method,
            request.bank,
            request.region,
            request.metadata.get(TRUTH_KEY, "ok"),
            draws,
            token_expired=self._expired,
            authenticated=request.authenticated,
        )
        existing = self.ledger.get(request.idempotency_key)
        if existing is not None and existing.result is not None:
            await self._wait(fate.latency_s if fate.answer is not Answer.HANG else 0.0)
            return existing.result  # an idempotent replay: same answer, no new charge
        if fate.answer is Answer.REFUSED:
            call.code = fate.code
            raise ProviderConnectionError(fate.code, "outage", sent=False)
        if fate.answer is Answer.HANG:
            call.code = "TIMEOUT"
            if fate.booked is not None and fate.booked_code is not None:  # processed anyway
                self._book(request, _OUTCOMES[fate.booked], fate.booked_code)
            await self._wait(fate.latency_s)
            raise ProviderConnectionError(fate.code, "no answer", sent=True)
        if fate.answer is Answer.ERROR:
            call.code = fate.code
            await self._wait(fate.latency_s)
            return ProviderResult(ProviderOutcome.ERROR, fate.code, fate.code.lower())
        if fate.slow:
            call.code = "SLOW"  # past any checkout's patience: a technical symptom
        assert fate.booked is not None
        result = self._book(request, _OUTCOMES[fate.booked], fate.code)
        await self._wait(fate.latency_s)
        return result

    async def query(self, request: QueryRequest) -> ProviderResult:
        now = self.clock.monotonic()
        key = self._keys.get(request.idempotency_key)
        asked = self._queries[request.idempotency_key] = (
            self._queries.get(request.idempotency_key, 0) + 1
        )
        z = query_draw(self.seed, key.payment, self.name, key.attempt, asked) if key else 0.0
        latency = self.fates.query_s(self.name, now, z)
        if latency is None:
            raise ProviderConnectionError("CONNECTION_REFUSED", "outage", sent=False)
        charge = self.ledger.get(request.idempotency_key)
        await self._wait(latency)
        if charge is None:
            return ProviderResult(ProviderOutcome.NOT_FOUND, "TRADE_NOT_FOUND", "no such charge")
        return charge.result or ProviderResult(ProviderOutcome.ERROR, "SYSTEM_ERROR", "no result")

    async def confirm(self, request: QueryRequest) -> ProviderResult:
        """The customer passed 3-D Secure: the held charge goes through as the request
        arrives (like a charge: a caller that stops waiting does not undo it)."""
        key = self._keys.get(request.idempotency_key)
        charge = self.ledger.get(request.idempotency_key)
        z = 0.0
        if key is not None:
            z = call_draws(self.seed, key.payment, self.name, key.attempt, self._faults).confirm
        if charge is None:
            await self._wait(self.fates.quiet_s(self.name, z))
            return ProviderResult(ProviderOutcome.NOT_FOUND, "TRADE_NOT_FOUND", "no such charge")
        if charge.state is ChargeState.AWAITING_AUTHENTICATION:
            charge.state = ChargeState.CHARGED
            charge.result = ProviderResult(
                ProviderOutcome.SUCCEEDED, APPROVED, "approved", charge.reference
            )
            self.ledger.put(charge)
        await self._wait(self.fates.quiet_s(self.name, z))
        return charge.result or ProviderResult(ProviderOutcome.ERROR, "SYSTEM_ERROR", "no result")

    async def refresh_credentials(self) -> None:
        self._expired = False

    # -- internals ---------------------------------------------------------------------

    def _expire_credentials(self, now: float) -> None:
        """A credentials fault expires the channel's token at its onset, once."""
        for i, f in enumerate(self._credentials):
            if f.at <= now < f.end and i not in self._expired_by:
                self._expired_by.add(i)
                self._expired = True

    def _quiet_latency(self) -> float:
        return self.fates.quiet_s(self.name, 0.0)
