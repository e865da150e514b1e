"""The connector on the lab's virtual-time loop, its HTTP in-process (an httpx
transport in place of sockets): answers, and time that passes without real waiting."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from paymend.engine.clock import LoopClock
from paymend.engine.virtual_time import run_virtual
from paymend.providers.base import ProviderOutcome
from paymend.providers.stripe import StripeProvider
from tests.providers.stripe.shaped_server import intent
from tests.providers.stripe.support import API_KEY, WEBHOOK_SECRET, charge

pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")


def in_process(clock: LoopClock, face: httpx.AsyncBaseTransport) -> StripeProvider:
    return StripeProvider(
        "stripe_eu", api_key=API_KEY, webhook_secret=WEBHOOK_SECRET, clock=clock, transport=face
    )


def test_an_in_process_stripe_answers() -> None:
    seen: list[httpx.Request] = []

    def face(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=intent("pi_v", "succeeded", "att_v"))

    async def scenario() -> None:
        provider = in_process(LoopClock(), httpx.MockTransport(face))
        result = await provider.authorize(charge("att_v", "pm_card_visa"))
        assert (result.outcome, result.reference) == (ProviderOutcome.SUCCEEDED, "pi_v")
        await provider.aclose()

    run_virtual(scenario())
    assert seen[0].headers["Idempotency-Key"] == "att_v"
    assert seen[0].url.path == "/v1/payment_intents"


def test_a_slow_stripe_costs_virtual_time_only() -> None:
    async def face(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(60)  # the loop's clock: virtual
        return httpx.Response(200, json=intent("pi_slow", "succeeded", "att_slow"))

    async def scenario() -> None:
        clock = LoopClock()
        provider = in_process(clock, httpx.MockTransport(face))
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(3):
                await provider.authorize(charge("att_slow", "pm_card_visa"))
        assert clock.monotonic() == pytest.approx(3.0)
        await provider.aclose()

    run_virtual(scenario())
