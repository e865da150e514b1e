"""The Adyen connector wired to the simulator's Adyen Checkout face, in-process
(httpx.ASGITransport) or on a real 127.0.0.1 port."""

from __future__ import annotations

from functools import cache
from typing import Any

import httpx

from paymend.domain.channel import Capabilities
from paymend.engine.clock import SystemClock
from paymend.providers.adyen import AdyenProvider, build
from paymend.providers.registry import ChannelSpec
from paymend.providers.simulator import SimulatedProvider, SimulatorSettings
from paymend.sim.adyen_checkout import REPORT_PATH, AdyenCheckout, FaceKeys

BASE = "http://adyen.test"


@cache
def keys() -> FaceKeys:
    return FaceKeys.generate()


def face(**settings: Any) -> AdyenCheckout:
    channel = SimulatedProvider("adyen_face", SimulatorSettings(**settings), SystemClock())
    return AdyenCheckout(keys(), channel)


def spec(
    base_url: str = BASE,
    transport: httpx.AsyncBaseTransport | None = None,
    credentials: dict[str, str] | None = None,
    **options: Any,
) -> ChannelSpec:
    return ChannelSpec(
        name="adyen_eu",
        type="adyen",
        base_url=base_url,
        capabilities=Capabilities(frozenset({"card"}), frozenset({"EUR"})),
        options={
            "merchant_account": keys().merchant_account,
            "return_url": "https://shop.example.com/back",
            "report_url": base_url + REPORT_PATH,
            **options,
        },
        credentials=credentials or keys().credentials(),
        transport=transport,
    )


def connector(checkout: AdyenCheckout, **options: Any) -> AdyenProvider:
    transport = httpx.ASGITransport(app=checkout, raise_app_exceptions=False)
    return build(spec(transport=transport, **options), SystemClock())
