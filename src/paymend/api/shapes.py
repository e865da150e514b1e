"""What the merchant API answers, as typed dicts: the view functions (`api/views.py`,
`api/failures.py`) build these very types, mypy checks their dict literals against them,
and the routes name them as `response_model`s, so the OpenAPI document shows them.

A typed dict costs nothing at run time: a view builds a plain dict and a route returns it
in a `JSONResponse`, which FastAPI sends as it is (no validation of every response).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, WithJsonSchema
from pydantic.fields import FieldInfo
from typing_extensions import TypedDict

from paymend.domain.failure import Kind
from paymend.domain.payment import (
    AttemptStatus,
    MaskedCustomer,
    PaymentStatus,
    RefundKind,
    RefundStatus,
)
from paymend.engine.compensations import CompensationKind
from paymend.engine.events import EventEnvelope


def doc(description: str) -> FieldInfo:
    """A field's description in the OpenAPI document."""
    return Field(description=description)  # type: ignore[no-any-return]


Timestamp = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
Url = Annotated[str, WithJsonSchema({"type": "string", "format": "uri"})]
FailureKind = Annotated[Kind, WithJsonSchema({"type": "string", "enum": [k.value for k in Kind]})]


class Attempt(TypedDict):
    """One call to one provider for this payment: the record of that call."""

    id: Annotated[str, doc("`att_…`; the provider's idempotency key is derived from it")]
    seq: Annotated[int, doc("1 for the first call, then 2, 3, … for retries and failovers")]
    provider: Annotated[str, doc("the channel called")]
    status: Annotated[
        AttemptStatus,
        doc(
            "`unknown`: no answer in time (a timeout, a lost response), asked about before "
            "any retry; `reversed`: charged after the payment settled another way, refunded"
        ),
    ]
    raw_code: Annotated[str | None, doc("the provider's own code")]
    raw_message: Annotated[str | None, doc("the provider's own message")]
    unified_code: Annotated[
        str | None, doc("the provider's code in paymend's catalogue (`GET /v1/failure-codes`)")
    ]
    decision: Annotated[
        str | None,
        doc("what paymend did next: `retry_same`, `failover`, `query_status`, `give_up`, …"),
    ]
    reason: Annotated[str | None, doc("why, in words")]
    latency_ms: int | None
    provider_reference: Annotated[str | None, doc("the provider's id of this charge")]
    trace_id: str | None
    created_at: Timestamp
    finished_at: Timestamp | None


class Refund(TypedDict):
    """A refund of all or part of a payment."""

    id: Annotated[str, doc("`re_…`")]
    object: Literal["refund"]
    payment_id: str
    amount: Annotated[int, doc("minor units of `currency`")]
    currency: str
    status: RefundStatus
    kind: Annotated[
        RefundKind,
        doc(
            "`merchant`: asked for through the API; `duplicate`: a second charge paymend "
            "sends back on its own"
        ),
    ]
    reason: str | None
    provider: str
    raw_code: Annotated[str | None, doc("the provider's code when it refused the refund")]
    created_at: Timestamp
    updated_at: Timestamp


class Compensation(TypedDict):
    """A coupon or credit support granted for a failed or delayed payment."""

    id: str
    object: Literal["compensation"]
    payment_id: str
    kind: CompensationKind
    amount: Annotated[int, doc("minor units of `currency`")]
    currency: str
    reason: str
    granted_by: Annotated[str, doc("the staff member, as the support tool names them")]
    created_at: Timestamp


class Failure(TypedDict):
    """Why a failed payment failed, for the merchant's systems, with the customer's text."""

    code: Annotated[
        str, doc("the unified failure code: the real one, also when customers see another")
    ]
    kind: Annotated[
        FailureKind,
        doc("`technical`: the channel's or paymend's side; `business`: funds, limits, the card"),
    ]
    category: str
    action: Annotated[str, doc("the decision taken on the last call, else the catalogue's rule")]
    title: Annotated[str, doc("what the customer reads, in `locale`")]
    message: str
    suggestions: list[str]
    help_url: Annotated[Url, doc("the public help page of the code customers are shown")]
    locale: str
    raw_code: Annotated[str | None, doc("the provider's own code")]
    raw_message: str | None


class CustomerMessage(TypedDict):
    """What to show the customer for the payment's status right now, in their language."""

    status: PaymentStatus
    title: str
    message: str
    suggestions: list[str]
    help_url: Annotated[Url | None, doc("a public help page, once the payment failed")]
    locale: str


class WaitForReview(TypedDict):
    """The payment is held for manual review; the decision follows by webhook."""

    type: Literal["wait_for_review"]
    description: str


class Authenticate(TypedDict):
    """The customer must pass the bank's 3-D Secure check; then the checkout confirms."""

    type: Literal["authenticate"]
    provider: str | None
    description: str
    confirm_url: Annotated[str, doc("the path to POST once the customer is back")]


class ProviderAction(TypedDict):
    """The provider waits for the customer: send them to `url` (a redirect to its page),
    or show `url` as a QR code to scan with the provider's app. The payment settles by
    itself when they pay (the provider's notification, or paymend's status query)."""

    type: Literal["redirect", "scan_qr_code"]
    provider: str
    url: str
    description: str


class SdkAction(TypedDict):
    """The provider's own script in the customer's browser carries on, with `parameters`
    (`sdk` says which script): `wechat_jsapi`, WeixinJSBridge's getBrandWCPayRequest
    (appId, timeStamp, nonceStr, package, signType, paySign); `stripe_js`, Stripe.js
    handleNextAction (client_secret, payment_intent); `adyen_checkout`, Drop-in's
    handleAction (Adyen's whole `action` object). The payment settles by the provider's
    notification or status query; after Adyen's in-page 3-D Secure, confirm with the
    component's `threeDSResult` in `details`."""

    type: Literal["sdk"]
    provider: str
    sdk: Literal["wechat_jsapi", "stripe_js", "adyen_checkout"]
    parameters: Annotated[
        dict[str, Any] | None,
        doc("what the script takes, for the customer's browser only; null in the ops API"),
    ]
    description: str
    confirm_url: Annotated[
        str | None,
        doc("the path to POST when the script says it is done; null: nothing to confirm"),
    ]


RiskAction = Literal["allow", "challenge", "review", "block"]


class FiredRule(TypedDict):
    rule: Annotated[str, doc("the rule's name, or `list:<allow|block>:<kind>` for a list")]
    action: RiskAction
    shadow: Annotated[bool, doc("a shadow rule: recorded, not enforced")]


class PaymentRisk(TypedDict):
    """The payment's risk decision, taken before any provider was called (docs/risk.md;
    the features it used: `GET /v1/payments/{id}/risk`)."""

    action: RiskAction
    rules: Annotated[list[FiredRule], doc("the rules that matched, in decision order")]
    score: Annotated[int, doc("the customer's behaviour score, 0-100 (50: a stranger)")]
    rules_version: str


class Payment(TypedDict):
    """A payment with its attempt timeline and refunds. Contact details appear masked."""

    id: Annotated[str, doc("`pay_…`")]
    object: Literal["payment"]
    status: PaymentStatus
    order_id: str
    amount: Annotated[int, doc("minor units of `currency` (1999 CNY is ¥19.99)")]
    currency: str
    amount_display: Annotated[str, doc("the amount in major units, e.g. `19.99`")]
    amount_refunded: Annotated[int, doc("minor units refunded so far")]
    method: str
    bank: str | None
    region: str | None
    payment_token: Annotated[str | None, doc("the token sent, masked")]
    customer: Annotated[MaskedCustomer, doc("who pays; email and phone masked")]
    metadata: Annotated[dict[str, str], doc("as the merchant sent it")]
    failure: Annotated[Failure | None, doc("null unless the payment failed")]
    customer_message: Annotated[
        CustomerMessage | None,
        doc(
            "what to show the customer; always given by the merchant API, null in the ops "
            "API's payments"
        ),
    ]
    status_url: Annotated[
        Url | None,
        doc(
            "the customer's own page for this payment (`/pay/{token}`: its status in their "
            "language, what to do next), signed and expiring; give it to the customer. "
            "Null in the ops API, and when the server has no link key (PAYMEND_LINK_KEY)"
        ),
    ]
    next_action: Annotated[
        WaitForReview | Authenticate | ProviderAction | SdkAction | None,
        doc("what the checkout does while the payment is `held` or `requires_action`"),
    ]
    trace_id: str | None
    created_at: Timestamp
    updated_at: Timestamp
    attempts: list[Attempt]
    refunds: list[Refund]
    risk: Annotated[
        PaymentRisk | None, doc("the risk decision; null when risk control did not decide it")
    ]


class Page(TypedDict):
    """One page of a list."""

    object: Literal["list"]
    has_more: Annotated[bool, doc("another page follows")]
    next_starting_after: Annotated[
        str | None,
        doc("when `has_more`: the last id of this page, to pass as `starting_after`"),
    ]


class PaymentList(Page):
    """Payments, newest first."""

    data: list[Payment]


class RefundList(Page):
    """A payment's refunds, oldest first: all of them, on one page."""

    data: list[Refund]


class EventList(Page):
    """Events, newest first."""

    data: list[EventEnvelope]


class CatalogueMessage(TypedDict):
    title: str
    detail: str
    suggestions: list[str]


class FailureCode(TypedDict):
    """One unified failure code: whose problem it is, what paymend does, what the
    customer reads."""

    code: str
    shown_to_customer_as: Annotated[
        str,
        doc("the code whose text and help page customers get (fraud reads as generic_decline)"),
    ]
    kind: FailureKind
    category: str
    action: str
    retry_same_channel: bool
    failover: bool
    counts_against_health: bool
    description: str
    customer_message: CatalogueMessage


class FailureCodeList(TypedDict):
    """The unified failure catalogue, with what the customer reads in `locale`."""

    object: Literal["list"]
    locale: Annotated[str, doc("the language of the customer messages")]
    data: list[FailureCode]


class Health(TypedDict):
    """Whether this process answers and reaches its database."""

    status: Literal["ok", "degraded"]
    database: Literal["ok", "unreachable"]
