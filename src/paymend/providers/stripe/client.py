"""The Stripe channel: card payments as PaymentIntents, through the official SDK.

Why the SDK (stripe-python) rather than a hand-written client: it follows Stripe's API
versions, encodes form parameters and error objects the way Stripe does, and its
`HTTPXClient` is asyncio-native (stripe/_http_client.py). It is built here with no
retries of its own (`max_network_retries=0`): the engine owns timeouts and retries, and
the SDK's back-off would sleep on the wall clock, out of reach of the injected one.

Every charge is created and confirmed in one call under the attempt's idempotency key
(`Idempotency-Key`, https://docs.stripe.com/api/idempotent_requests), with the key and
the payment id in the PaymentIntent's metadata. How a charge is found again when its
answer was lost is `query`'s docstring.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

import httpx
import stripe
import structlog

from paymend.domain.channel import Capabilities
from paymend.domain.clock import Clock
from paymend.providers.base import (
    ChargeRequest,
    ProviderNotification,
    ProviderOutcome,
    ProviderResult,
    QueryRequest,
    RefundRequest,
    SettlementLine,
)
from paymend.providers.stripe import settlement, webhooks
from paymend.providers.stripe.amounts import UnrepresentableAmount, to_stripe
from paymend.providers.stripe.mapping import (
    ATTEMPT_KEY,
    PAYMENT_KEY,
    REFUND_KEY,
    error_result,
    intent_result,
    refund_result,
)

log = structlog.get_logger("paymend.providers.stripe")

DEFAULT_BASE_URL = "https://api.stripe.com"
# With confirm=true Stripe wants a return_url unless redirect-based methods are off
# (https://docs.stripe.com/api/payment_intents/create#create_payment_intent-return_url):
# cards only, 3-D Secure then answers `requires_action` with `use_stripe_sdk`.
DEFAULT_INTENT_PARAMS: Mapping[str, Any] = {
    "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"}
}
FENCE_KEY = "paymend_fence"  # metadata of the PaymentIntent a status query leaves behind
_REMEMBERED = 10_000  # attempt key -> PaymentIntent id, the most recent ones


@dataclass(frozen=True, slots=True)
class ChannelCheck:
    """What `check` found: whether Stripe answers this key, and how fast."""

    ok: bool
    code: str | None
    message: str
    latency_ms: int


class StripeProvider:
    """One Stripe account as a paymend channel (cards). The secret key and the webhook
    signing secret are held here and never logged or shown by `repr`."""

    code_map = "stripe"

    def __init__(
        self,
        name: str,
        *,
        api_key: str,
        webhook_secret: str,
        clock: Clock,
        base_url: str = DEFAULT_BASE_URL,
        connect_timeout_s: float = 3.0,
        read_timeout_s: float = 20.0,
        currencies: Sequence[str] | None = None,
        regions: Sequence[str] | None = None,
        intent_params: Mapping[str, Any] = DEFAULT_INTENT_PARAMS,
        webhook_tolerance_s: float = webhooks.DEFAULT_TOLERANCE_S,
        settlement_window: timedelta | None = timedelta(days=3),
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """`intent_params` are sent with every PaymentIntent this channel creates; the
        default turns redirect-based methods off, and a shop that sends its customers
        through 3-D Secure pages gives `{"return_url": ...}` instead. `transport` puts
        the connection in-process (the lab's virtual time): it replaces the httpx client
        the SDK's HTTPXClient made (its `_client_async`, stripe/_http_client.py)."""
        self.name = name
        self.clock = clock
        self.capabilities = Capabilities(
            methods=frozenset({"card"}),
            currencies=frozenset(currencies) if currencies else None,
            regions=frozenset(regions) if regions else None,
        )
        self.base_url = base_url
        self.intent_params = dict(intent_params)
        self.settlement_window = settlement_window
        self._api_key = api_key
        self._webhook_secret = webhook_secret
        self._tolerance_s = webhook_tolerance_s
        timeout = httpx.Timeout(read_timeout_s, connect=connect_timeout_s)
        self._http = stripe.HTTPXClient(timeout=timeout)
        self._timeout, self._transport = timeout, transport
        if transport is not None:
            self._http._client_async = httpx.AsyncClient(transport=transport)
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": base_url},
            http_client=self._http,
            max_network_retries=0,
        )
        self._intents: OrderedDict[str, str] = OrderedDict()

    def __repr__(self) -> str:
        return f"StripeProvider({self.name!r}, base_url={self.base_url!r})"

    async def aclose(self) -> None:
        """Close the HTTP connections (the runtime's stop). A fresh client takes the
        closed one's place, unconnected, should the channel be used again."""
        await self._http.close_async()  # type: ignore[no-untyped-call]  # untyped in the SDK
        self._http._client_async = httpx.AsyncClient(
            timeout=self._timeout, transport=self._transport
        )

    # -- Provider ---------------------------------------------------------------------

    async def authorize(self, request: ChargeRequest) -> ProviderResult:
        """Create and confirm a PaymentIntent for the card `request.token` names (a
        PaymentMethod id from Stripe.js). 3-D Secure answers REQUIRES_ACTION, Stripe's
        `next_action` kept in `raw`."""
        if not request.token:
            return ProviderResult(ProviderOutcome.ERROR, "parameter_missing", "no payment method")
        try:
            amount, currency = to_stripe(request.amount)
        except UnrepresentableAmount as exc:
            return ProviderResult(ProviderOutcome.ERROR, "invalid_charge_amount", str(exc))
        params: dict[str, Any] = {
            **self.intent_params,
            "amount": amount,
            "currency": currency,
            "payment_method": request.token,
            "confirm": True,
            "metadata": {ATTEMPT_KEY: request.idempotency_key, PAYMENT_KEY: request.payment_id},
        }
        try:
            intent = await self._client.v1.payment_intents.create_async(
                cast(Any, params), {"idempotency_key": request.idempotency_key}
            )
        except stripe.StripeError as exc:
            return self._remember(request.idempotency_key, self._error(exc))
        return self._remember(request.idempotency_key, intent_result(intent.to_dict()))

    # -- StatusQuery ------------------------------------------------------------------

    async def query(self, request: QueryRequest) -> ProviderResult:
        """What became of the charge sent under `request.idempotency_key`.

        Its PaymentIntent id is known when any answer named it; otherwise it is searched
        by metadata. Search is not read-after-write (a new PaymentIntent is searchable
        "in less than a minute", https://docs.stripe.com/search), so finding nothing
        proves nothing. The key itself is then the proof: a create under the same key
        with other parameters (a PaymentIntent of 1 USD, unconfirmed) either is refused
        with an `idempotency_error`, because Stripe ran a request under that key (so the
        charge exists: PENDING, ask again), or creates that harmless PaymentIntent, which
        is cancelled at once. Then the original request never ran and now never can:
        NOT_FOUND. Replaying the original create instead, Stripe's advice for a lost
        answer, is not done: a status query would then charge, after the engine may
        have given the attempt up, and the query does not carry the charge's parameters.
        """
        key = request.idempotency_key
        found = self._intents.get(key) or await self._search(key)
        if found is None:
            return await self._fence(key)
        try:
            intent = await self._client.v1.payment_intents.retrieve_async(found)
        except stripe.StripeError as exc:
            return self._error(exc)
        return intent_result(intent.to_dict())

    # -- ConfirmsAuthentication -------------------------------------------------------

    async def confirm(self, request: QueryRequest) -> ProviderResult:
        """After the customer's 3-D Secure. Stripe confirms the PaymentIntent itself once
        the customer has authenticated (https://docs.stripe.com/payments/3d-secure), so
        this reads its status, and confirms it only if it waits for confirmation."""
        result = await self.query(request)
        if result.raw_code != "requires_confirmation" or result.reference is None:
            return result
        try:
            intent = await self._client.v1.payment_intents.confirm_async(
                result.reference, options={"idempotency_key": f"{request.idempotency_key}:c"}
            )
        except stripe.StripeError as exc:
            return self._error(exc)
        return intent_result(intent.to_dict())

    async def cancel(self, request: QueryRequest) -> ProviderResult:
        """Cancel the charge if it has not gone through: DECLINED `canceled` when it is
        off; SUCCEEDED if it had already been charged (refund it instead). A charge
        Stripe never received is fenced (see `query`) and can no longer happen."""
        key = request.idempotency_key
        found = self._intents.get(key) or await self._search(key)
        if found is None:
            return await self._fence(key)
        try:
            intent = await self._client.v1.payment_intents.cancel_async(
                found, options={"idempotency_key": f"{key}:x"}
            )
        except stripe.InvalidRequestError as exc:
            if exc.code == "payment_intent_unexpected_state":
                return await self.query(request)  # already succeeded or cancelled
            return self._error(exc)
        except stripe.StripeError as exc:
            return self._error(exc)
        return intent_result(intent.to_dict())

    async def close_unpaid(self, request: QueryRequest) -> ProviderResult:
        """The engine's cancel of a payment waiting on the customer: `cancel` (a
        PaymentIntent Stripe has charged meanwhile cannot be cancelled, and answers
        SUCCEEDED: the charge stands)."""
        return await self.cancel(request)

    # -- Refunds ----------------------------------------------------------------------

    async def refund(self, request: RefundRequest) -> ProviderResult:
        """Refund all or part of a charge (`charge_reference` is its PaymentIntent id)
        under the refund's own idempotency key. Stripe refusing it (already refunded,
        more than is left) is DECLINED: final, unlike an error on the way."""
        try:
            amount, _ = to_stripe(request.amount)
        except UnrepresentableAmount as exc:
            return ProviderResult(ProviderOutcome.DECLINED, "invalid_charge_amount", str(exc))
        try:
            refund = await self._client.v1.refunds.create_async(
                {
                    "payment_intent": request.charge_reference,
                    "amount": amount,
                    "metadata": {REFUND_KEY: request.idempotency_key},
                },
                {"idempotency_key": request.idempotency_key},
            )
        except stripe.InvalidRequestError as exc:
            answer = self._error(exc)
            if answer.outcome is ProviderOutcome.ERROR:
                return ProviderResult(
                    ProviderOutcome.DECLINED, answer.raw_code, answer.raw_message, None, answer.raw
                )
            return answer
        except stripe.StripeError as exc:
            return self._error(exc)
        return refund_result(refund.to_dict())

    # -- Settlements ------------------------------------------------------------------

    async def settlements(self) -> list[SettlementLine]:
        """The charges in the account's balance transactions (within
        `settlement_window` of now, all of them when it is None), refunds deducted."""
        since = None
        if self.settlement_window is not None:
            since = int((self.clock.now() - self.settlement_window).timestamp())
        return await settlement.settlement_lines(self._client, since)

    # -- InboundNotifications ---------------------------------------------------------

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> ProviderNotification:
        """A webhook event, verified against the signing secret (ValueError if not)."""
        return webhooks.parse(
            headers, body, self._webhook_secret, self.clock.now(), self._tolerance_s
        )

    # -- health -----------------------------------------------------------------------

    async def check(self) -> ChannelCheck:
        """Does Stripe answer this key? Reads the account's balance (no side effect)."""
        start = self.clock.monotonic()
        try:
            await self._client.v1.balance.retrieve_async()
        except stripe.StripeError as exc:
            code, message = self._check_failure(exc)
            return ChannelCheck(False, code, message, self._ms(start))
        return ChannelCheck(True, None, "Stripe answered", self._ms(start))

    # -- inside -----------------------------------------------------------------------

    async def _search(self, key: str) -> str | None:
        """The id of the PaymentIntent created under `key`, if search finds it already."""
        quoted = key.replace("\\", "\\\\").replace("'", "\\'")
        try:
            found = await self._client.v1.payment_intents.search_async(
                {"query": f"metadata['{ATTEMPT_KEY}']:'{quoted}'", "limit": 1}
            )
        except stripe.StripeError as exc:
            # unavailable (e.g. for accounts in India): the fence still answers
            log.info("stripe_search_failed", channel=self.name, error=type(exc).__name__)
            return None
        if not found.data:
            return None
        return self._keep(key, found.data[0].id)

    async def _fence(self, key: str) -> ProviderResult:
        try:
            fence = await self._client.v1.payment_intents.create_async(
                {"amount": 100, "currency": "usd", "metadata": {FENCE_KEY: key}},
                {"idempotency_key": key},
            )
        except stripe.StripeError as exc:
            return self._error(exc)  # idempotency_error: PENDING, the charge exists
        try:
            await self._client.v1.payment_intents.cancel_async(fence.id)
        except stripe.StripeError as exc:  # an uncancelled fence moves no money
            log.warning("stripe_fence_not_cancelled", channel=self.name, error=type(exc).__name__)
        return ProviderResult(
            ProviderOutcome.NOT_FOUND,
            "resource_missing",
            "Stripe ran no request under this idempotency key",
            None,
            {"fence": fence.id},
        )

    def _error(self, exc: stripe.StripeError) -> ProviderResult:
        return error_result(exc, redact=self._api_key)

    def _remember(self, key: str, result: ProviderResult) -> ProviderResult:
        if result.reference is not None:
            self._keep(key, result.reference)
        return result

    def _keep(self, key: str, intent_id: str) -> str:
        self._intents[key] = intent_id
        self._intents.move_to_end(key)
        while len(self._intents) > _REMEMBERED:
            self._intents.popitem(last=False)
        return intent_id

    def _check_failure(self, exc: stripe.StripeError) -> tuple[str, str]:
        if isinstance(exc, stripe.APIConnectionError):
            return "CONNECTION", "Stripe could not be reached"
        answer = self._error(exc)
        return answer.raw_code or "api_error", answer.raw_message or type(exc).__name__

    def _ms(self, start: float) -> int:
        return round((self.clock.monotonic() - start) * 1000)
