"""Asking Stripe what became of a charge whose answer was lost.

Against the Stripe-shaped server: localstripe has neither search nor idempotency keys.
The order of the questions is the connector's (client.py, `query`): the PaymentIntent
id if an answer named it; a search by metadata; and, when search finds nothing yet, the
idempotency key itself (https://docs.stripe.com/api/idempotent_requests): a create under
the same key with other parameters is refused if Stripe ran the original.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from paymend.providers.base import (
    ProviderConnectionError,
    ProviderOutcome,
    ProviderResult,
    QueryRequest,
)
from paymend.providers.stripe import StripeProvider
from tests.providers.stripe.shaped_server import DROP, Answer, ShapedStripe, error, intent
from tests.providers.stripe.support import channel, charge

pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")
INTENTS = "/v1/payment_intents"
SEARCH = "/v1/payment_intents/search"
KEY = "att_lost"
ASK = QueryRequest(KEY, "pay_lost")


def found(*intents: dict[str, Any]) -> Answer:
    """A search answer (https://docs.stripe.com/api/payment_intents/search)."""
    return Answer(
        200, {"object": "search_result", "url": SEARCH, "has_more": False, "data": list(intents)}
    )


def query(server: ShapedStripe, provider: StripeProvider | None = None) -> ProviderResult:
    async def go() -> ProviderResult:
        asked = provider or channel(server.url)
        try:
            return await asked.query(ASK)
        finally:
            await asked.aclose()

    return asyncio.run(go())


def test_a_charge_whose_id_is_known_is_retrieved(shaped: ShapedStripe) -> None:
    shaped.on("POST", INTENTS, Answer(200, intent("pi_1", "processing", KEY)))
    shaped.on("GET", f"{INTENTS}/pi_1", Answer(200, intent("pi_1", "succeeded", KEY)))

    async def go() -> tuple[ProviderResult, ProviderResult]:
        provider = channel(shaped.url)
        try:
            first = await provider.authorize(charge(KEY, "pm_card_visa"))
            return first, await provider.query(ASK)
        finally:
            await provider.aclose()

    first, later = asyncio.run(go())
    assert first.outcome is ProviderOutcome.PENDING  # processing: money may still move
    assert (later.outcome, later.reference) == (ProviderOutcome.SUCCEEDED, "pi_1")
    assert shaped.requests("GET", SEARCH) == []


def test_after_a_lost_answer_search_finds_the_charge(shaped: ShapedStripe) -> None:
    shaped.on("POST", INTENTS, DROP)
    shaped.on("GET", SEARCH, found(intent("pi_2", "succeeded", KEY)))
    shaped.on("GET", f"{INTENTS}/pi_2", Answer(200, intent("pi_2", "succeeded", KEY)))

    async def go() -> ProviderResult:
        provider = channel(shaped.url)
        try:
            with pytest.raises(ProviderConnectionError) as lost:
                await provider.authorize(charge(KEY, "pm_card_visa"))
            assert lost.value.sent
            return await provider.query(ASK)
        finally:
            await provider.aclose()

    result = asyncio.run(go())
    assert (result.outcome, result.reference) == (ProviderOutcome.SUCCEEDED, "pi_2")
    [search] = shaped.requests("GET", SEARCH)
    assert search.form["query"] == f"metadata['paymend_attempt']:'{KEY}'"


def test_a_charge_not_searchable_yet_is_pending(shaped: ShapedStripe) -> None:
    shaped.on("GET", SEARCH, found())
    shaped.on(
        "POST",
        INTENTS,
        error(
            400,
            type="idempotency_error",
            message=(
                "Keys for idempotent requests can only be used with the same parameters "
                f"they were first used with. Try using a key other than '{KEY}' if you "
                "meant to execute a different request."
            ),
        ),
    )
    result = query(shaped)
    assert (result.outcome, result.raw_code) == (ProviderOutcome.PENDING, "idempotency_error")
    [fence] = shaped.requests("POST", INTENTS)
    assert fence.headers["Idempotency-Key"] == KEY
    assert "confirm" not in fence.form and "payment_method" not in fence.form
    assert fence.form["metadata[paymend_fence]"] == KEY


def test_a_charge_stripe_never_ran_is_not_found_and_never_will_be(shaped: ShapedStripe) -> None:
    shaped.on("GET", SEARCH, found())
    shaped.on("POST", INTENTS, Answer(200, intent("pi_fence", "requires_payment_method")))
    shaped.on("POST", f"{INTENTS}/pi_fence/cancel", Answer(200, intent("pi_fence", "canceled")))
    result = query(shaped)
    assert (result.outcome, result.raw_code) == (ProviderOutcome.NOT_FOUND, "resource_missing")
    assert result.raw["fence"] == "pi_fence"
    assert len(shaped.requests("POST", f"{INTENTS}/pi_fence/cancel")) == 1


def test_without_search_the_key_still_answers(shaped: ShapedStripe) -> None:
    shaped.on("GET", SEARCH, error(404, type="invalid_request_error", message="Not available."))
    shaped.on("POST", INTENTS, error(400, type="idempotency_error", message="Key reused."))
    assert query(shaped).outcome is ProviderOutcome.PENDING


def test_a_failed_question_is_no_answer(shaped: ShapedStripe) -> None:
    shaped.on("GET", SEARCH, found(intent("pi_3", "succeeded", KEY)))
    shaped.on("GET", f"{INTENTS}/pi_3", error(500, type="api_error", message="Try again."))
    result = query(shaped)
    assert result.outcome not in (ProviderOutcome.NOT_FOUND, ProviderOutcome.DECLINED)
    assert result.outcome is ProviderOutcome.PENDING


def test_cancelling_a_charge_stripe_never_ran_fences_it(shaped: ShapedStripe) -> None:
    shaped.on("GET", SEARCH, found())
    shaped.on("POST", INTENTS, Answer(200, intent("pi_fence", "requires_payment_method")))
    shaped.on("POST", f"{INTENTS}/pi_fence/cancel", Answer(200, intent("pi_fence", "canceled")))

    async def go() -> ProviderResult:
        provider = channel(shaped.url)
        try:
            return await provider.cancel(ASK)
        finally:
            await provider.aclose()

    assert asyncio.run(go()).outcome is ProviderOutcome.NOT_FOUND
