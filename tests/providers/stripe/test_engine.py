"""The payment engine driving the Stripe connector, on SQLite and PostgreSQL: the
connector registered the way the runtime will register it, one entry in the providers
mapping. Real peers: localstripe, and the Stripe-shaped server for what it cannot say."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from paymend.domain.ids import MerchantId
from paymend.domain.money import Money
from paymend.domain.payment import AttemptStatus, Customer, PaymentStatus, RefundStatus
from paymend.engine.commands import PayCommand, RefundCommand
from paymend.engine.payments import PaymentView
from paymend.engine.reconcile import reconcile
from paymend.providers.base import RefundRequest
from paymend.providers.stripe import StripeProvider
from paymend.store.database import Store
from tests.helpers import ManualClock, make_merchant, service
from tests.providers.stripe.shaped_server import DROP, Answer, ShapedStripe, error, intent
from tests.providers.stripe.support import channel, charge

pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url, inline=True)
    yield s
    s.close()


def pay(mid: MerchantId, order: str, token: str = "pm_card_visa") -> PayCommand:
    return PayCommand(
        merchant_id=mid,
        order_id=order,
        amount=Money(2500, "EUR"),
        method="card",
        token=token,
        customer=Customer("c1", "en", None, "ana@example.com"),
    )


def test_a_payment_through_stripe_succeeds_and_is_refunded(store: Store, localstripe: str) -> None:
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock = ManualClock()
        stripe = channel(localstripe, clock=clock, intent_params={}, settlement_window=None)
        engine = service(store, {"stripe_eu": stripe}, clock)
        try:
            view = await engine.pay(pay(mid, "o-ls-1"))
            assert view.payment.status is PaymentStatus.SUCCEEDED
            (attempt,) = view.attempts
            assert attempt.raw_code == "succeeded"
            assert attempt.provider_reference is not None
            refund = await engine.refund(RefundCommand(mid, view.payment.id, 1000))
            assert refund.status is RefundStatus.SUCCEEDED
            assert refund.provider_reference is not None
            lines = {line.idempotency_key: line for line in await stripe.settlements()}
            line = lines[attempt.idempotency_key]
            assert (line.amount, line.refunded) == (Money(2500, "EUR"), 1000)
        finally:
            await stripe.aclose()

    asyncio.run(scenario())


def test_reconciliation_finds_what_happened_at_stripe_behind_paymends_back(
    store: Store, localstripe: str
) -> None:
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock = ManualClock()
        stripe = channel(localstripe, clock=clock, intent_params={}, settlement_window=None)
        engine = service(store, {"stripe_eu": stripe}, clock)
        try:
            view = await engine.pay(pay(mid, "o-rec-1"))
            (attempt,) = view.attempts
            assert attempt.provider_reference is not None
            # at Stripe, not through paymend: a refund, and a charge under a key no
            # attempt of this database has
            await stripe.refund(
                RefundRequest("rf-dash", attempt.provider_reference, Money(400, "EUR"))
            )
            ghost = await stripe.authorize(charge(f"att-ghost-{view.payment.id}", "pm_card_visa"))
            report = await reconcile(engine)
        finally:
            await stripe.aclose()
        found = {(m.kind, m.reference): m for m in report.mismatches}
        refund = found[("refund", attempt.provider_reference)]
        assert (refund.store, refund.provider_says) == ("refunded 0", "refunded 400")
        assert ("unknown_charge", ghost.reference) in found
        assert not any(k == "amount" for k, _ in found)

    asyncio.run(scenario())


def test_a_decline_reaches_the_customer_with_its_unified_code(
    store: Store, shaped: ShapedStripe
) -> None:
    mid, _ = make_merchant(store)
    shaped.on(
        "POST",
        "/v1/payment_intents",
        error(
            402,
            type="card_error",
            code="card_declined",
            decline_code="insufficient_funds",
            message="Your card has insufficient funds.",
            payment_intent=intent("pi_poor", "requires_payment_method"),
        ),
    )
    view = run(store, shaped, pay(mid, "o-no-1"))
    assert view.payment.status is PaymentStatus.FAILED
    assert view.payment.failure_code == "insufficient_funds"
    (attempt,) = view.attempts
    assert (attempt.raw_code, attempt.unified_code) == ("insufficient_funds", "insufficient_funds")
    assert attempt.raw_message == "Your card has insufficient funds."


def test_a_lost_answer_is_asked_about_and_charged_once(store: Store, shaped: ShapedStripe) -> None:
    mid, _ = make_merchant(store)
    shaped.on("POST", "/v1/payment_intents", DROP)
    shaped.on(
        "GET",
        "/v1/payment_intents/search",
        Answer(
            200,
            {"object": "search_result", "has_more": False, "data": [intent("pi_x", "succeeded")]},
        ),
    )
    shaped.on("GET", "/v1/payment_intents/pi_x", Answer(200, intent("pi_x", "succeeded")))
    view = run(store, shaped, pay(mid, "o-lost-1"))
    assert view.payment.status is PaymentStatus.SUCCEEDED
    (attempt,) = view.attempts
    assert attempt.status is AttemptStatus.SUCCEEDED
    assert attempt.provider_reference == "pi_x"
    assert len(shaped.requests("POST", "/v1/payment_intents")) == 1  # never sent again


def run(store: Store, server: ShapedStripe, command: PayCommand) -> PaymentView:
    async def scenario() -> PaymentView:
        clock = ManualClock()
        stripe: StripeProvider = channel(server.url, clock=clock)
        try:
            return await service(store, {"stripe_eu": stripe}, clock).pay(command)
        finally:
            await stripe.aclose()

    return asyncio.run(scenario())
