"""The Provider protocol and the value types that cross it.

Results carry the provider's raw code and message untouched: classification into the
unified catalogue happens in `failures/`, never here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from paymend.domain.channel import Capabilities
from paymend.domain.money import Money

__all__ = [
    "Capabilities",
    "ChargeRequest",
    "Provider",
    "ProviderConnectionError",
    "ProviderOutcome",
    "ProviderResult",
    "QueryRequest",
    "RefundRequest",
    "SettlementLine",
]


class ProviderOutcome(StrEnum):
    SUCCEEDED = "succeeded"
    DECLINED = "declined"  # the provider answered no; no money moved
    REQUIRES_ACTION = "requires_action"  # 3-D Secure / SCA / wallet confirmation needed
    ERROR = "error"  # the provider answered with an error; no money moved
    NOT_FOUND = "not_found"  # query: the provider never received this charge
    PENDING = "pending"  # query: the provider is still working on it


@dataclass(frozen=True, slots=True)
class ChargeRequest:
    idempotency_key: str
    payment_id: str
    amount: Money
    method: str
    token: str | None = None
    bank: str | None = None
    region: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    authenticated: bool = False  # the customer completed 3-D Secure for this charge


@dataclass(frozen=True, slots=True)
class QueryRequest:
    """Ask what became of the charge sent with `idempotency_key`."""

    idempotency_key: str
    payment_id: str


@dataclass(frozen=True, slots=True)
class RefundRequest:
    idempotency_key: str
    charge_reference: str
    amount: Money


@dataclass(frozen=True, slots=True)
class ProviderResult:
    outcome: ProviderOutcome
    raw_code: str | None = None
    raw_message: str | None = None
    reference: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SettlementLine:
    """One charge as the provider's settlement report lists it."""

    reference: str
    idempotency_key: str
    payment_id: str
    amount: Money
    refunded: int


class ProviderConnectionError(Exception):
    """The call failed below the HTTP answer.

    `sent` tells whether the request may have reached the provider: if it may have, the
    outcome is unknown and must be queried; if it cannot have (connection refused), the
    call is a clean technical failure.
    """

    def __init__(self, raw_code: str, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.raw_code = raw_code
        self.raw_message = message
        self.sent = sent


@runtime_checkable
class Provider(Protocol):
    """A payment channel. Every call is idempotent under its request's idempotency key."""

    name: str
    code_map: str  # which failures/providers/*.yaml classifies its raw codes
    capabilities: Capabilities

    async def authorize(self, request: ChargeRequest) -> ProviderResult: ...

    async def query(self, request: QueryRequest) -> ProviderResult: ...

    async def confirm(self, request: QueryRequest) -> ProviderResult:
        """Complete a charge that waited for the customer's 3-D Secure."""
        ...

    async def refund(self, request: RefundRequest) -> ProviderResult: ...
