"""Stripe's error answers, from the Stripe-shaped server, as the connector reads them.

The bodies are Stripe's documented error objects (https://docs.stripe.com/api/errors):
a decline carries `decline_code` (https://docs.stripe.com/declines/codes) and the
PaymentIntent it left behind; localstripe sends neither.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from paymend.domain.money import Money
from paymend.failures.classify import RawAnswer, default_classifier
from paymend.providers.base import (
    ProviderConnectionError,
    ProviderOutcome,
    ProviderResult,
    RefundRequest,
)
from paymend.providers.stripe import StripeProvider
from tests.providers.stripe.shaped_server import DROP, HANG, Answer, ShapedStripe, error, intent
from tests.providers.stripe.support import API_KEY, channel, charge

T = TypeVar("T")
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")
INTENTS = "/v1/payment_intents"


def run(
    server: ShapedStripe, scenario: Callable[[StripeProvider], Awaitable[T]], **options: Any
) -> T:
    async def go() -> T:
        provider = channel(server.url, **options)
        try:
            return await scenario(provider)
        finally:
            await provider.aclose()

    return asyncio.run(go())


def authorize(server: ShapedStripe, key: str = "att_1", **options: Any) -> ProviderResult:
    async def scenario(provider: StripeProvider) -> ProviderResult:
        return await provider.authorize(charge(key, "pm_card_visa"))

    return run(server, scenario, **options)


def unified(result: ProviderResult) -> str:
    return default_classifier().classify("stripe", RawAnswer(result.raw_code)).code


def test_the_request_carries_the_attempt_key_and_metadata(shaped: ShapedStripe) -> None:
    shaped.on("POST", INTENTS, Answer(200, intent("pi_1", "succeeded", "att_1")))
    result = authorize(shaped, amount_key := "att_1")
    assert (result.outcome, result.reference) == (ProviderOutcome.SUCCEEDED, "pi_1")
    [sent] = shaped.requests("POST", INTENTS)
    assert sent.headers["Idempotency-Key"] == amount_key
    assert sent.headers["Authorization"] == f"Bearer {API_KEY}"
    assert sent.form["amount"] == "1000" and sent.form["currency"] == "eur"
    assert sent.form["confirm"] == "true"
    assert sent.form["metadata[paymend_attempt]"] == "att_1"
    assert sent.form["metadata[paymend_payment]"] == "pay_att_1"
    # without a return_url, Stripe wants redirect-based methods off
    assert sent.form["automatic_payment_methods[allow_redirects]"] == "never"


@pytest.mark.parametrize(
    ("decline_code", "expected"),
    [
        ("insufficient_funds", "insufficient_funds"),
        ("expired_card", "expired_card"),
        ("stolen_card", "lost_or_stolen_card"),
    ],
)
def test_a_card_error_is_a_decline_with_its_decline_code(
    shaped: ShapedStripe, decline_code: str, expected: str
) -> None:
    shaped.on(
        "POST",
        INTENTS,
        error(
            402,
            type="card_error",
            code="card_declined",
            decline_code=decline_code,
            message="Your card was declined.",
            doc_url="https://docs.stripe.com/error-codes/card-declined",
            payment_intent=intent("pi_declined", "requires_payment_method", "att_1"),
        ),
    )
    result = authorize(shaped)
    assert result.outcome is ProviderOutcome.DECLINED
    assert (result.raw_code, result.raw_message) == (decline_code, "Your card was declined.")
    assert result.reference == "pi_declined"
    assert result.raw["error"]["code"] == "card_declined"
    assert unified(result) == expected


def test_a_card_error_without_decline_code_keeps_its_code(shaped: ShapedStripe) -> None:
    shaped.on(
        "POST",
        INTENTS,
        error(
            402,
            type="card_error",
            code="incorrect_cvc",
            message="Your card's security code is incorrect.",
        ),
    )
    result = authorize(shaped)
    assert (result.outcome, result.raw_code) == (ProviderOutcome.DECLINED, "incorrect_cvc")
    assert unified(result) == "incorrect_details"


def test_a_rate_limit_ran_nothing(shaped: ShapedStripe) -> None:
    shaped.on(
        "POST",
        INTENTS,
        error(429, type="invalid_request_error", code="rate_limit", message="Too many requests."),
    )
    result = authorize(shaped)
    assert (result.outcome, result.raw_code) == (ProviderOutcome.ERROR, "rate_limit")
    assert unified(result) == "rate_limited"


@pytest.mark.parametrize(
    ("answer", "raw_code"),
    [
        (
            error(500, type="api_error", message="Something went wrong on Stripe's end."),
            "api_error",
        ),
        (
            error(
                409,
                type="invalid_request_error",
                code="idempotency_key_in_use",
                message="There is currently another in-progress request using this key.",
            ),
            "idempotency_key_in_use",
        ),
        (
            error(
                400,
                type="idempotency_error",
                message="Keys for idempotent requests can only be used with the same parameters.",
            ),
            "idempotency_error",
        ),
    ],
)
def test_an_answer_that_leaves_the_charge_open_is_pending(
    shaped: ShapedStripe, answer: Answer, raw_code: str
) -> None:
    shaped.on("POST", INTENTS, answer)
    result = authorize(shaped)
    assert (result.outcome, result.raw_code) == (ProviderOutcome.PENDING, raw_code)


@pytest.mark.parametrize(
    "answer",
    [
        Answer(200, b"<html><body>502 Bad Gateway</body></html>"),
        Answer(502, b"upstream connect error"),
        Answer(200, {"object": "payment_intent"}),  # no id, no status
        Answer(200, intent("pi_odd", "reticulating")),
    ],
)
def test_an_answer_that_cannot_be_read_is_pending_and_unmapped(
    shaped: ShapedStripe, answer: Answer
) -> None:
    shaped.on("POST", INTENTS, answer)
    result = authorize(shaped)
    assert (result.outcome, result.raw_code) == (ProviderOutcome.PENDING, "unparseable_response")
    failure = default_classifier().classify("stripe", RawAnswer(result.raw_code))
    assert failure.code == "unrecognized_response" and not failure.mapped


def test_the_api_key_never_reaches_a_kept_message(shaped: ShapedStripe) -> None:
    key = "sk_test_secret_value_42"
    shaped.on(
        "POST",
        INTENTS,
        error(401, type="invalid_request_error", message=f"Invalid API Key provided: {key}"),
    )
    result = authorize(shaped, api_key=key)
    assert (result.outcome, result.raw_code) == (ProviderOutcome.ERROR, "401")
    assert result.raw_message is not None and key not in result.raw_message
    assert unified(result) == "credentials_expired"

    async def shown(provider: StripeProvider) -> str:
        return repr(provider)

    assert key not in run(shaped, shown, api_key=key)


def test_a_lost_answer_may_have_been_sent(shaped: ShapedStripe) -> None:
    shaped.on("POST", INTENTS, DROP)
    with pytest.raises(ProviderConnectionError) as lost:
        authorize(shaped)
    assert (lost.value.raw_code, lost.value.sent) == ("CONNECTION_RESET", True)


def test_no_answer_in_time_may_have_been_sent(shaped: ShapedStripe) -> None:
    shaped.on("POST", INTENTS, HANG)
    with pytest.raises(ProviderConnectionError) as late:
        authorize(shaped, read_timeout_s=0.2)
    assert (late.value.raw_code, late.value.sent) == ("READ_TIMEOUT", True)


def test_an_amount_stripe_cannot_take_is_refused_unsent(shaped: ShapedStripe) -> None:
    async def scenario(provider: StripeProvider) -> ProviderResult:
        return await provider.authorize(charge("att_mga", "pm_card_visa", 150, "MGA"))

    result = run(shaped, scenario)
    assert (result.outcome, result.raw_code) == (ProviderOutcome.ERROR, "invalid_charge_amount")
    assert shaped.seen == []


def test_a_refund_stripe_refuses_is_final(shaped: ShapedStripe) -> None:
    shaped.on(
        "POST",
        "/v1/refunds",
        error(
            400,
            type="invalid_request_error",
            code="charge_already_refunded",
            message="Charge ch_1 has already been refunded.",
        ),
    )

    async def scenario(provider: StripeProvider) -> ProviderResult:
        return await provider.refund(RefundRequest("rf_1", "pi_1", Money(500, "EUR")))

    result = run(shaped, scenario)
    assert (result.outcome, result.raw_code) == (
        ProviderOutcome.DECLINED,
        "charge_already_refunded",
    )
    [sent] = shaped.requests("POST", "/v1/refunds")
    assert sent.headers["Idempotency-Key"] == "rf_1"
    assert (sent.form["payment_intent"], sent.form["amount"]) == ("pi_1", "500")
