"""The Alipay connector wired to the simulator's Alipay gateway face, in-process
(httpx.ASGITransport) or on a real 127.0.0.1 port."""

from __future__ import annotations

from functools import cache
from typing import Any

import httpx

from paymend.domain.channel import Capabilities
from paymend.engine.clock import SystemClock
from paymend.providers.alipay import AlipayProvider, build
from paymend.providers.registry import ChannelSpec
from paymend.providers.simulator import SimulatedProvider, SimulatorSettings
from paymend.sim.alipay_gateway import AlipayGateway, GatewayKeys

GATEWAY = "http://alipay.test/gateway.do"


@cache
def keys() -> GatewayKeys:
    """One set of keys for the whole run: RSA key generation is slow."""
    return GatewayKeys.generate()


def face(**settings: Any) -> AlipayGateway:
    channel = SimulatedProvider("alipay_face", SimulatorSettings(**settings), SystemClock())
    return AlipayGateway(keys(), channel)


def spec(
    base_url: str = GATEWAY,
    transport: httpx.AsyncBaseTransport | None = None,
    credentials: dict[str, str] | None = None,
    **options: Any,
) -> ChannelSpec:
    return ChannelSpec(
        name="alipay_cn",
        type="alipay",
        base_url=base_url,
        capabilities=Capabilities(frozenset({"alipay"}), frozenset({"CNY"})),
        options={"app_id": keys().app_id, "bill_days": 1, **options},
        credentials=credentials or keys().credentials(),
        transport=transport,
    )


def connector(gateway: AlipayGateway, **options: Any) -> AlipayProvider:
    transport = httpx.ASGITransport(app=gateway, raise_app_exceptions=False)
    return build(spec(transport=transport, **options), SystemClock())
