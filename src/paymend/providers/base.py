"""The Provider protocol, its optional capabilities, and the value types that cross it.

Results carry the provider's raw code and message untouched: classification into the
unified catalogue happens in `failures/`, never here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from paymend.domain.channel import Capabilities
from paymend.domain.money import Money

__all__ = [
    "Capabilities",
    "Capability",
    "ChargeRequest",
    "CheckResult",
    "ClosesUnpaid",
    "ConfirmsAuthentication",
    "CredentialRefresh",
    "HealthCheck",
    "HoldsConnections",
    "InboundNotifications",
    "NotificationIgnored",
    "NotificationReply",
    "Provider",
    "ProviderConnectionError",
    "ProviderNotification",
    "ProviderOutcome",
    "ProviderResult",
    "QueryRequest",
    "RefundRequest",
    "Refunds",
    "SettlementLine",
    "SettlementPeriod",
    "Settlements",
    "StatusQuery",
    "optional_capabilities",
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
    # the payment's deadline: after it paymend no longer takes this charge (a late one is
    # refunded), so a provider whose unpaid orders can expire (Alipay's `time_expire`)
    # ends them there; None: the connector's own default
    pay_by: datetime | None = None


@dataclass(frozen=True, slots=True)
class QueryRequest:
    """Ask what became of the charge sent with `idempotency_key` (or confirm or close it).
    `details`: what the customer's return from the provider's page brought, passed on
    by the shop's confirm (Adyen's `redirectResult`, `threeDSResult`)."""

    idempotency_key: str
    payment_id: str
    details: Mapping[str, str] = field(default_factory=dict)
    # when the charge was sent (its attempt's creation): a connector that must give up on
    # an order some time after it was sent counts from here, whichever process sent it
    sent_at: datetime | None = None


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


@dataclass(frozen=True, slots=True)
class NotificationReply:
    """What the provider expects back for a notification it may stop resending."""

    body: bytes = b""
    content_type: str = "text/plain"
    status: int = 200


class NotificationIgnored(Exception):
    """A notification that verified but is about nothing paymend settles (an event type
    the connector does not read). It is acknowledged with `reply`, so the provider stops
    resending, and changes nothing."""

    def __init__(self, why: str, reply: NotificationReply | None = None) -> None:
        super().__init__(why)
        self.reply = reply or NotificationReply()


@dataclass(frozen=True, slots=True)
class ProviderNotification:
    """What a provider told paymend on its own initiative (a webhook, an async notify):
    the charge it is about, what became of it, and the answer that acknowledges it
    (Alipay: the text `success`). `amount` is the charge's amount as the provider says,
    checked against the attempt's before anything is settled."""

    idempotency_key: str | None  # the attempt's key, when the provider echoes it
    reference: str | None  # the provider's own id of the charge
    result: ProviderResult
    reply: NotificationReply = NotificationReply()
    amount: Money | None = None
    # about a refund instead of a charge: the refund's idempotency key (`result` is then
    # the refund's outcome: SUCCEEDED, or DECLINED when the provider could not pay it back)
    refund_key: str | None = None


@runtime_checkable
class Provider(Protocol):
    """A payment channel. Every call is idempotent under its request's idempotency key.

    `authorize` is all a channel must offer; what else it can do is declared by the
    optional capabilities below, each a protocol of its own, checked with
    `isinstance(provider, StatusQuery)` or listed by `optional_capabilities`. The engine
    asks for a capability before it uses one and says what it does without it."""

    name: str
    code_map: str  # which failures/providers/*.yaml classifies its raw codes
    capabilities: Capabilities  # methods, currencies and regions it takes

    async def authorize(self, request: ChargeRequest) -> ProviderResult: ...


@runtime_checkable
class StatusQuery(Protocol):
    """Says what became of a charge sent under an idempotency key. Without it an unknown
    outcome stays unknown (its settle job ends buried, with an ops alert); a settlement
    report can still show the charge."""

    async def query(self, request: QueryRequest) -> ProviderResult: ...


@runtime_checkable
class ConfirmsAuthentication(Protocol):
    """Completes a charge it held for the customer's 3-D Secure. Without it, a payment
    the customer authenticated is charged again, as an authenticated new attempt."""

    async def confirm(self, request: QueryRequest) -> ProviderResult: ...


@runtime_checkable
class ClosesUnpaid(Protocol):
    """Closes a charge the customer has not paid yet (a QR code, a redirect to the
    provider's page, a 3-D Secure wait), so it can no longer be paid: the engine's
    cancel calls it for an attempt waiting on the customer. The answer reads as a status
    query's: DECLINED (closed) or NOT_FOUND (never made: nothing to pay) means no money
    moved; SUCCEEDED means the customer paid meanwhile, so the close was refused and the
    charge stands (the payment succeeds, nothing is lost); PENDING or ERROR, unknown
    (a charge that still lands is a late success, refunded). Without it, the cancel
    leaves the provider's order open; a charge that lands later is refunded."""

    async def close_unpaid(self, request: QueryRequest) -> ProviderResult: ...


@runtime_checkable
class HoldsConnections(Protocol):
    """Keeps HTTP connections open between calls; `aclose` closes those of the running
    event loop (the runtime's stop). Not a payment capability: never listed as one."""

    async def aclose(self) -> None: ...


@runtime_checkable
class Refunds(Protocol):
    """Sends money of a charge back. Without it, refunds on its charges are refused."""

    async def refund(self, request: RefundRequest) -> ProviderResult: ...


@runtime_checkable
class CredentialRefresh(Protocol):
    """Renews its own access token when the provider says it expired."""

    async def refresh_credentials(self) -> None: ...


@runtime_checkable
class Settlements(Protocol):
    """Lists the charges the provider settled: what reconciliation compares with."""

    async def settlements(self) -> list[SettlementLine]: ...


@runtime_checkable
class SettlementPeriod(Protocol):
    """A settlement report that covers a period only (Alipay's daily bills): after
    `settlements()`, `settled_between` is the [start, end) it covered, so charges
    recorded outside it are not reported missing from it."""

    settled_between: tuple[datetime, datetime] | None


@runtime_checkable
class InboundNotifications(Protocol):
    """Reads a notification the provider sent paymend (`POST /v1/providers/{channel}/
    notifications`), verifying its signature over the raw body before reading anything
    of it; raises ValueError for one that does not verify or cannot be read. Without
    it, the channel's notifications are refused (404) and its outcomes are settled by
    status queries only."""

    def parse_notification(
        self, headers: Mapping[str, str], body: bytes
    ) -> ProviderNotification: ...


@dataclass(frozen=True, slots=True)
class CheckResult:
    """What a connector's health check found: `ok`, and what the provider answered."""

    ok: bool
    detail: str


@runtime_checkable
class HealthCheck(Protocol):
    """A check that the credentials work and the provider answers, moving no money
    (`paymend channels check`): Alipay's is a signed query for an order that cannot
    exist, which only a reachable gateway that knows our key answers with
    ACQ.TRADE_NOT_EXIST."""

    async def check(self) -> CheckResult: ...


class Capability(StrEnum):
    STATUS_QUERY = "status_query"
    CONFIRM = "confirm"
    CLOSE_UNPAID = "close_unpaid"
    REFUNDS = "refunds"
    CREDENTIAL_REFRESH = "credential_refresh"
    SETTLEMENTS = "settlements"
    INBOUND_NOTIFICATIONS = "inbound_notifications"


_PROTOCOLS: dict[Capability, type] = {
    Capability.STATUS_QUERY: StatusQuery,
    Capability.CONFIRM: ConfirmsAuthentication,
    Capability.CLOSE_UNPAID: ClosesUnpaid,
    Capability.REFUNDS: Refunds,
    Capability.CREDENTIAL_REFRESH: CredentialRefresh,
    Capability.SETTLEMENTS: Settlements,
    Capability.INBOUND_NOTIFICATIONS: InboundNotifications,
}


def optional_capabilities(provider: Provider) -> frozenset[Capability]:
    """The optional capabilities `provider` offers, by the protocols it implements."""
    return frozenset(c for c, protocol in _PROTOCOLS.items() if isinstance(provider, protocol))
