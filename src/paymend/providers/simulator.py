"""A simulated payment channel with fault injection and a ledger of its own.

It behaves like a real provider where it matters to paymend: answers take time, some
calls hang, some hang *and charge anyway*, some responses are lost after the money
moved, an outage refuses connections, and every charge is idempotent under its key.
The ledger is the provider's truth, so tests can prove that nothing was charged twice.

Behaviour is drawn from a seeded generator. Payment tokens starting with `sim_` force an
outcome, like a provider's test cards: `sim_decline_<CODE>`, `sim_timeout`,
`sim_timeout_charged`, `sim_lost_response`, `sim_error_<CODE>`, `sim_3ds`.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from enum import StrEnum

from paymend.domain.clock import Clock
from paymend.domain.money import Money
from paymend.providers.base import (
    Capabilities,
    ChargeRequest,
    ProviderConnectionError,
    ProviderOutcome,
    ProviderResult,
    QueryRequest,
    RefundRequest,
    SettlementLine,
)

# The simulator's own vocabulary of answers (mapped in failures/providers/simulator.yaml).
APPROVED = "APPROVED"
DECLINE_CODES = (
    "INSUFFICIENT_FUNDS",
    "DO_NOT_HONOR",
    "EXPIRED_CARD",
    "INCORRECT_DETAILS",
    "SUSPECTED_FRAUD",
    "LOST_CARD",
    "LIMIT_EXCEEDED",
    "BANK_RESTRICTION",
)
AUTHENTICATION_REQUIRED = "AUTHENTICATION_REQUIRED"
ERROR_CODES = ("SYSTEM_ERROR", "RATE_LIMITED", "TOKEN_EXPIRED", "INVALID_PARAMETER")


class ChargeState(StrEnum):
    CHARGED = "charged"
    AWAITING_AUTHENTICATION = "awaiting_authentication"
    DECLINED = "declined"


@dataclass(slots=True)
class LedgerCharge:
    reference: str
    idempotency_key: str
    payment_id: str
    amount: Money
    state: ChargeState
    refunded: int = 0
    result: ProviderResult | None = None
    booked_at: float = 0.0  # on the simulator's monotonic clock


class Ledger:
    """What the provider believes happened: charges by idempotency key, and refunds.
    Kept in memory; `SqliteLedger` keeps it in a file that outlives the process."""

    def __init__(self) -> None:
        self.charges: dict[str, LedgerCharge] = {}
        self.refunds: dict[str, tuple[str, int]] = {}

    def get(self, key: str) -> LedgerCharge | None:
        return self.charges.get(key)

    def put(self, charge: LedgerCharge) -> None:
        self.charges[charge.idempotency_key] = charge

    def by_reference(self, reference: str) -> LedgerCharge | None:
        return next((c for c in self.charges.values() if c.reference == reference), None)

    def all_charges(self) -> list[LedgerCharge]:
        return list(self.charges.values())

    def refund_get(self, key: str) -> tuple[str, int] | None:
        return self.refunds.get(key)

    def refund_put(self, key: str, reference: str, amount: int) -> None:
        self.refunds[key] = (reference, amount)

    def size(self) -> int:
        return len(self.charges) + len(self.refunds)

    def charged(self, payment_id: str) -> list[LedgerCharge]:
        return [
            c
            for c in self.all_charges()
            if c.payment_id == payment_id and c.state is ChargeState.CHARGED
        ]

    def net_charged(self, payment_id: str) -> int:
        """Minor units this payment's customer is out of pocket, refunds deducted."""
        return sum(c.amount.minor - c.refunded for c in self.charged(payment_id))


@dataclass(slots=True)
class SimulatorSettings:
    """How one simulated channel behaves. Rates are probabilities per call."""

    methods: tuple[str, ...] = ("card",)
    currencies: tuple[str, ...] | None = None
    regions: tuple[str, ...] | None = None
    success_rate: float = 1.0  # share of well-formed calls the issuer approves
    declines: dict[str, float] = field(default_factory=lambda: {"DO_NOT_HONOR": 1.0})
    authentication_rate: float = 0.0  # share of calls that ask for 3-D Secure
    latency_p50_ms: float = 0.0
    latency_p99_ms: float = 0.0
    timeout_rate: float = 0.0  # the call hangs for `hang_s`
    charged_on_timeout: float = 0.0  # of hung calls, the share where money moved anyway
    lost_response_rate: float = 0.0  # money moves, then the connection resets
    error_rate: float = 0.0  # the provider answers SYSTEM_ERROR, nothing charged
    outage: bool = False  # every call is refused at connect, nothing charged
    credentials_expired: bool = False  # every call answers TOKEN_EXPIRED until refreshed
    hang_s: float = 60.0
    query_lag_s: float = 0.0  # a status query does not see a charge younger than this


class LedgerChannel:
    """What simulated channels share: a ledger, references, and the operations that only
    read and move money in it (confirm, refund, the settlement report)."""

    name: str
    clock: Clock
    ledger: Ledger
    _refs: int

    def _before_call(self) -> None:
        """Count the call and refuse it when the channel is down."""

    def _quiet_latency(self) -> float:
        return 0.0

    def _message(self, code: str) -> str:
        return code.lower()

    async def confirm(self, request: QueryRequest) -> ProviderResult:
        """The customer passed 3-D Secure: the held charge goes through."""
        self._before_call()
        charge = self.ledger.get(request.idempotency_key)
        await self._wait(self._quiet_latency())
        if charge is None:
            return ProviderResult(ProviderOutcome.NOT_FOUND, "TRADE_NOT_FOUND", "no such charge")
        if charge.state is ChargeState.AWAITING_AUTHENTICATION:
            charge.state = ChargeState.CHARGED
            charge.result = ProviderResult(
                ProviderOutcome.SUCCEEDED, APPROVED, "approved", charge.reference
            )
            self.ledger.put(charge)
        return charge.result or ProviderResult(ProviderOutcome.ERROR, "SYSTEM_ERROR", "no result")

    async def refund(self, request: RefundRequest) -> ProviderResult:
        self._before_call()
        await self._wait(self._quiet_latency())
        earlier = self.ledger.refund_get(request.idempotency_key)
        if earlier is not None:
            return ProviderResult(ProviderOutcome.SUCCEEDED, "REFUNDED", "refunded", earlier[0])
        charge = self.ledger.by_reference(request.charge_reference)
        if charge is None or charge.state is not ChargeState.CHARGED:
            return ProviderResult(ProviderOutcome.DECLINED, "TRADE_NOT_FOUND", "no such charge")
        if request.amount.minor > charge.amount.minor - charge.refunded:
            return ProviderResult(
                ProviderOutcome.DECLINED, "REFUND_AMOUNT_EXCEEDED", "refund exceeds charge"
            )
        charge.refunded += request.amount.minor
        ref = self._next_ref("rf")
        self.ledger.put(charge)
        self.ledger.refund_put(request.idempotency_key, ref, request.amount.minor)
        return ProviderResult(ProviderOutcome.SUCCEEDED, "REFUNDED", "refunded", ref)

    async def settlements(self) -> list[SettlementLine]:
        """The settlement report: every charge that moved money, with its refunds."""
        return [
            SettlementLine(c.reference, c.idempotency_key, c.payment_id, c.amount, c.refunded)
            for c in self.ledger.all_charges()
            if c.state is ChargeState.CHARGED and c.reference.startswith(f"ch_{self.name}_")
        ]

    async def _wait(self, seconds: float) -> None:
        if seconds > 0:
            await self.clock.sleep(seconds)

    def _book(self, request: ChargeRequest, outcome: ProviderOutcome, code: str) -> ProviderResult:
        """Record the charge as the provider decided it, the moment the request arrives."""
        state = {
            ProviderOutcome.SUCCEEDED: ChargeState.CHARGED,
            ProviderOutcome.REQUIRES_ACTION: ChargeState.AWAITING_AUTHENTICATION,
        }.get(outcome, ChargeState.DECLINED)
        ref = self._next_ref("ch")
        result = ProviderResult(outcome, code, self._message(code), ref)
        self.ledger.put(
            LedgerCharge(
                reference=ref,
                idempotency_key=request.idempotency_key,
                payment_id=request.payment_id,
                amount=request.amount,
                state=state,
                result=result,
                booked_at=self.clock.monotonic(),
            )
        )
        return result

    def _next_ref(self, prefix: str) -> str:
        self._refs += 1
        return f"{prefix}_{self.name}_{self._refs:08d}"


class SimulatedProvider(LedgerChannel):
    """One simulated channel. Deterministic for a given seed and call order."""

    code_map = "simulator"

    def __init__(
        self,
        name: str,
        settings: SimulatorSettings,
        clock: Clock,
        *,
        seed: int = 0,
        ledger: Ledger | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        self.clock = clock
        self.ledger = ledger if ledger is not None else Ledger()
        self.capabilities = Capabilities(
            methods=frozenset(settings.methods),
            currencies=frozenset(settings.currencies) if settings.currencies else None,
            regions=frozenset(settings.regions) if settings.regions else None,
        )
        self._rng = random.Random(f"{name}:{seed}")  # noqa: S311 - a simulation, not secrets
        self._refs = self.ledger.size()  # references stay unique across restarts
        self.calls = 0

    # -- the Provider protocol ---------------------------------------------------------

    async def authorize(self, request: ChargeRequest) -> ProviderResult:
        """Decide and book the charge as the request arrives; the answer then takes its
        latency. As with a real provider, a caller that stops waiting does not undo it."""
        self.calls += 1
        s = self.settings
        if s.outage:
            raise ProviderConnectionError(
                "CONNECTION_REFUSED", f"{self.name}: connection refused", sent=False
            )
        latency = self._latency()
        existing = self.ledger.get(request.idempotency_key)
        if existing is not None and existing.result is not None:
            await self._wait(latency)
            return existing.result  # an idempotent replay: same answer, no new charge
        if s.credentials_expired:
            await self._wait(latency)
            return ProviderResult(
                ProviderOutcome.ERROR, "TOKEN_EXPIRED", _MESSAGES["TOKEN_EXPIRED"]
            )
        behaviour = self._choose(request.token)
        if behaviour in ("timeout", "timeout_charged"):
            if behaviour == "timeout_charged":
                self._book(request, ProviderOutcome.SUCCEEDED, APPROVED)
            await self._wait(s.hang_s)
            raise ProviderConnectionError("READ_TIMEOUT", f"{self.name}: no answer", sent=True)
        if behaviour == "lost_response":
            self._book(request, ProviderOutcome.SUCCEEDED, APPROVED)
            await self._wait(latency)
            raise ProviderConnectionError(
                "CONNECTION_RESET", f"{self.name}: connection reset by peer", sent=True
            )
        if behaviour.startswith("error:"):
            code = behaviour.removeprefix("error:")
            await self._wait(latency)
            return ProviderResult(ProviderOutcome.ERROR, code, _MESSAGES.get(code, code))
        if behaviour == "3ds" and not request.authenticated:
            result = self._book(request, ProviderOutcome.REQUIRES_ACTION, AUTHENTICATION_REQUIRED)
        elif behaviour.startswith("decline:"):
            result = self._book(
                request, ProviderOutcome.DECLINED, behaviour.removeprefix("decline:")
            )
        else:
            result = self._book(request, ProviderOutcome.SUCCEEDED, APPROVED)
        await self._wait(latency)
        return result

    async def query(self, request: QueryRequest) -> ProviderResult:
        self.calls += 1
        if self.settings.outage:
            raise ProviderConnectionError(
                "CONNECTION_REFUSED", f"{self.name}: connection refused", sent=False
            )
        await self._wait(self._latency())
        charge = self.ledger.get(request.idempotency_key)
        lagging = (
            charge is not None
            and self.clock.monotonic() - charge.booked_at < self.settings.query_lag_s
        )
        if charge is None or lagging:
            return ProviderResult(
                ProviderOutcome.NOT_FOUND, "TRADE_NOT_FOUND", "no charge with this key"
            )
        if charge.result is not None:
            return charge.result
        return ProviderResult(ProviderOutcome.SUCCEEDED, APPROVED, "approved", charge.reference)

    def _before_call(self) -> None:
        self.calls += 1
        if self.settings.outage:
            raise ProviderConnectionError(
                "CONNECTION_REFUSED", f"{self.name}: connection refused", sent=False
            )

    def _quiet_latency(self) -> float:
        return self._latency()

    def _message(self, code: str) -> str:
        return _MESSAGES.get(code, code.lower())

    async def refresh_credentials(self) -> None:
        """Fetch a new access token: ends a `credentials_expired` spell."""
        self.calls += 1
        self.settings.credentials_expired = False

    # -- behaviour ---------------------------------------------------------------------

    def _choose(self, token: str | None) -> str:
        forced = _forced(token)
        if forced is not None:
            return forced
        s, r = self.settings, self._rng.random
        if r() < s.timeout_rate:
            return "timeout_charged" if r() < s.charged_on_timeout else "timeout"
        if r() < s.lost_response_rate:
            return "lost_response"
        if r() < s.error_rate:
            return "error:SYSTEM_ERROR"
        if r() < s.authentication_rate:
            return "3ds"
        if r() >= s.success_rate:
            codes = list(s.declines)
            code: str = self._rng.choices(codes, [s.declines[c] for c in codes])[0]
            return "decline:" + code
        return "approve"

    def _latency(self) -> float:
        """Seconds, log-normal through the configured p50 and p99."""
        p50, p99 = self.settings.latency_p50_ms, self.settings.latency_p99_ms
        if p50 <= 0:
            return 0.0
        sigma = max(0.0, math.log(max(p99, p50) / p50) / 2.326)
        return self._rng.lognormvariate(math.log(p50), sigma) / 1000.0


def _forced(token: str | None) -> str | None:
    if not token or not token.startswith("sim_"):
        return None
    spec = token.removeprefix("sim_")
    if spec in ("timeout", "timeout_charged", "lost_response", "3ds", "approve"):
        return spec
    for kind in ("decline", "error"):
        if spec.startswith(kind + "_"):
            return f"{kind}:{spec.removeprefix(kind + '_').upper()}"
    return None


_MESSAGES = {
    APPROVED: "approved",
    "INSUFFICIENT_FUNDS": "insufficient funds",
    "DO_NOT_HONOR": "do not honor",
    "EXPIRED_CARD": "card expired",
    "INCORRECT_DETAILS": "incorrect card details",
    "SUSPECTED_FRAUD": "suspected fraud",
    "LOST_CARD": "lost card, pick up",
    "LIMIT_EXCEEDED": "amount limit exceeded",
    "BANK_RESTRICTION": "transaction not permitted by issuer",
    AUTHENTICATION_REQUIRED: "3-D Secure authentication required",
    "SYSTEM_ERROR": "system error, please retry",
    "RATE_LIMITED": "too many requests",
    "TOKEN_EXPIRED": "access token expired",
    "INVALID_PARAMETER": "invalid parameter",
}
