"""The Stripe connector against localstripe, a stateful fake of Stripe's API: charges,
3-D Secure, cancel, refunds, balance transactions, the health check.

localstripe does not model idempotency keys, search, or decline codes; those are
tested against the Stripe-shaped server (test_errors.py, test_query.py).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest

from paymend.domain.money import Money
from paymend.failures.classify import RawAnswer, default_classifier
from paymend.providers.base import (
    Capability,
    ProviderConnectionError,
    ProviderOutcome,
    QueryRequest,
    RefundRequest,
    optional_capabilities,
)
from paymend.providers.stripe import StripeProvider
from tests.helpers import WAIT_S
from tests.providers.stripe.support import API_KEY, channel, charge

T = TypeVar("T")
# the SDK hands httpx its form body as `data=` (stripe/_http_client.py)
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")


def run(base_url: str, scenario: Callable[[StripeProvider], Awaitable[T]], **options: Any) -> T:
    async def go() -> T:
        provider = channel(base_url, **options)
        try:
            return await scenario(provider)
        finally:
            await provider.aclose()

    return asyncio.run(go())


def card(localstripe: str, number: str) -> str:
    """A PaymentMethod for a test card number, as Stripe.js would create it."""
    answer = httpx.post(
        f"{localstripe}/v1/payment_methods",
        auth=(API_KEY, ""),
        data={
            "type": "card",
            "card[number]": number,
            "card[exp_month]": "12",
            "card[exp_year]": "2030",
            "card[cvc]": "123",
        },
        timeout=WAIT_S,
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["id"])


def authenticate(localstripe: str, intent_id: str, *, success: bool = True) -> None:
    """The customer's 3-D Secure, as localstripe's stand-in for the issuer's page does."""
    intent = httpx.get(
        f"{localstripe}/v1/payment_intents/{intent_id}", auth=(API_KEY, ""), timeout=WAIT_S
    )
    answer = httpx.post(
        f"{localstripe}/v1/payment_intents/{intent_id}/_authenticate",
        data={
            "key": "pk_test_paymend",
            "client_secret": intent.json()["client_secret"],
            "success": "true" if success else "false",
        },
        timeout=WAIT_S,
    )
    assert answer.status_code == 200, answer.text


def test_it_offers_every_capability_but_credential_refresh(localstripe: str) -> None:
    async def capabilities(provider: StripeProvider) -> frozenset[Capability]:
        return optional_capabilities(provider)

    assert run(localstripe, capabilities) == {
        Capability.STATUS_QUERY,
        Capability.CONFIRM,
        Capability.CLOSE_UNPAID,
        Capability.REFUNDS,
        Capability.SETTLEMENTS,
        Capability.INBOUND_NOTIFICATIONS,
    }


def test_a_charge_succeeds_and_a_query_says_so(localstripe: str) -> None:
    async def scenario(provider: StripeProvider) -> None:
        result = await provider.authorize(charge("ls-ok-1", "pm_card_visa"))
        assert result.outcome is ProviderOutcome.SUCCEEDED
        assert result.reference is not None and result.reference.startswith("pi_")
        assert result.raw["amount"] == 1000 and result.raw["currency"] == "eur"
        assert result.raw["attempt"] == "ls-ok-1"
        queried = await provider.query(QueryRequest("ls-ok-1", "pay_ls-ok-1"))
        assert (queried.outcome, queried.reference) == (ProviderOutcome.SUCCEEDED, result.reference)

    run(localstripe, scenario, intent_params={})


def test_a_zero_decimal_currency_is_sent_as_is(localstripe: str) -> None:
    async def scenario(provider: StripeProvider) -> None:
        result = await provider.authorize(charge("ls-jpy-1", "pm_card_visa", 500, "JPY"))
        assert result.outcome is ProviderOutcome.SUCCEEDED
        assert (result.raw["amount"], result.raw["currency"]) == (500, "jpy")

    run(localstripe, scenario, intent_params={})


def test_a_decline_is_declined_with_stripes_code(localstripe: str) -> None:
    async def scenario(provider: StripeProvider) -> None:
        result = await provider.authorize(charge("ls-no-1", "pm_card_chargeCustomerFail"))
        assert result.outcome is ProviderOutcome.DECLINED
        assert result.raw_code == "card_declined"
        assert result.raw_message == "Your card was declined."
        failure = default_classifier().classify("stripe", RawAnswer(result.raw_code))
        assert failure.mapped and failure.code == "generic_decline"

    run(localstripe, scenario, intent_params={})


@pytest.mark.parametrize("number", ["4000002500003155", "4000002760003184"])
def test_3d_secure_asks_the_customer_then_confirm_completes(localstripe: str, number: str) -> None:
    key = f"ls-3ds-{number[-4:]}"

    async def scenario(provider: StripeProvider) -> None:
        result = await provider.authorize(charge(key, card(localstripe, number)))
        assert result.outcome is ProviderOutcome.REQUIRES_ACTION
        assert result.raw["stripe_next_action"]["type"] == "use_stripe_sdk"
        assert result.reference is not None
        # what Stripe.js needs in the customer's browser to run next_action
        action = result.raw["next_action"]
        assert (action["type"], action["sdk"]) == ("sdk", "stripe_js")
        parameters = json.loads(action["parameters"])
        assert parameters["client_secret"].startswith(f"{result.reference}_secret_")
        assert parameters["payment_intent"] == result.reference
        waiting = await provider.query(QueryRequest(key, f"pay_{key}"))
        assert waiting.outcome is ProviderOutcome.REQUIRES_ACTION
        authenticate(localstripe, result.reference)
        confirmed = await provider.confirm(QueryRequest(key, f"pay_{key}"))
        assert (confirmed.outcome, confirmed.reference) == (
            ProviderOutcome.SUCCEEDED,
            result.reference,
        )

    run(localstripe, scenario, intent_params={})


def test_a_failed_authentication_is_a_decline(localstripe: str) -> None:
    async def scenario(provider: StripeProvider) -> None:
        result = await provider.authorize(
            charge("ls-3ds-no", card(localstripe, "4000002500003155"))
        )
        assert result.reference is not None
        authenticate(localstripe, result.reference, success=False)
        confirmed = await provider.confirm(QueryRequest("ls-3ds-no", "pay_ls-3ds-no"))
        assert confirmed.outcome is ProviderOutcome.DECLINED
        assert confirmed.raw_code == "payment_intent_authentication_failure"
        failure = default_classifier().classify("stripe", RawAnswer(confirmed.raw_code))
        assert failure.code == "authentication_failed"

    run(localstripe, scenario, intent_params={})


def test_a_charge_waiting_for_the_customer_can_be_cancelled(localstripe: str) -> None:
    async def scenario(provider: StripeProvider) -> None:
        await provider.authorize(charge("ls-cancel", card(localstripe, "4000002500003155")))
        cancelled = await provider.cancel(QueryRequest("ls-cancel", "pay_ls-cancel"))
        assert (cancelled.outcome, cancelled.raw_code) == (ProviderOutcome.DECLINED, "canceled")
        queried = await provider.query(QueryRequest("ls-cancel", "pay_ls-cancel"))
        assert queried.outcome is ProviderOutcome.DECLINED

    run(localstripe, scenario, intent_params={})


def test_refunds_partial_then_the_rest(localstripe: str) -> None:
    async def scenario(provider: StripeProvider) -> None:
        paid = await provider.authorize(charge("ls-refund", "pm_card_visa", 1000))
        assert paid.reference is not None
        first = await provider.refund(RefundRequest("rf-1", paid.reference, Money(300, "EUR")))
        assert first.outcome is ProviderOutcome.SUCCEEDED
        assert first.reference is not None and first.reference.startswith("re_")
        assert first.raw["amount"] == 300
        rest = await provider.refund(RefundRequest("rf-2", paid.reference, Money(700, "EUR")))
        assert rest.outcome is ProviderOutcome.SUCCEEDED
        lines = {line.idempotency_key: line for line in await provider.settlements()}
        line = lines["ls-refund"]
        assert (line.reference, line.payment_id) == (paid.reference, "pay_ls-refund")
        assert (line.amount, line.refunded) == (Money(1000, "EUR"), 1000)

    run(localstripe, scenario, intent_params={}, settlement_window=None)


def test_the_settlement_report_lists_paymend_charges_exactly(localstripe: str) -> None:
    async def scenario(provider: StripeProvider) -> None:
        await provider.authorize(charge("ls-settle-eur", "pm_card_visa", 1234, "EUR"))
        await provider.authorize(charge("ls-settle-jpy", "pm_card_visa", 800, "JPY"))
        await provider.authorize(charge("ls-settle-no", "pm_card_chargeCustomerFail"))
        lines = {line.idempotency_key: line for line in await provider.settlements()}
        assert lines["ls-settle-eur"].amount == Money(1234, "EUR")
        assert lines["ls-settle-jpy"].amount == Money(800, "JPY")
        assert lines["ls-settle-eur"].refunded == 0
        assert "ls-settle-no" not in lines  # a declined charge moved no money

    run(localstripe, scenario, intent_params={}, settlement_window=None)


def test_the_health_check_reads_the_balance(localstripe: str) -> None:
    async def ok(provider: StripeProvider) -> None:
        check = await provider.check()
        assert check.ok and check.code is None

    async def refused(provider: StripeProvider) -> None:
        check = await provider.check()
        assert not check.ok and check.code == "401"

    run(localstripe, ok)
    run(localstripe, refused, api_key="rk_wrong")


def test_a_wrong_key_is_a_credentials_failure(localstripe: str) -> None:
    async def scenario(provider: StripeProvider) -> None:
        result = await provider.authorize(charge("ls-key", "pm_card_visa"))
        assert (result.outcome, result.raw_code) == (ProviderOutcome.ERROR, "401")
        failure = default_classifier().classify("stripe", RawAnswer(result.raw_code))
        assert failure.code == "credentials_expired" and failure.alert_ops

    run(localstripe, scenario, api_key="rk_wrong", intent_params={})


def test_a_refused_connection_was_never_sent() -> None:
    async def scenario(provider: StripeProvider) -> None:
        with pytest.raises(ProviderConnectionError) as refused:
            await provider.authorize(charge("ls-down", "pm_card_visa"))
        assert (refused.value.raw_code, refused.value.sent) == ("CONNECTION_REFUSED", False)

    run("http://127.0.0.1:9", scenario)
