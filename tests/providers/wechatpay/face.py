"""The WeChat Pay connector wired to the simulator's WeChat Pay v3 face, in-process
(httpx.ASGITransport) or on a real 127.0.0.1 port."""

from __future__ import annotations

from functools import cache
from typing import Any

import httpx

from paymend.domain.channel import Capabilities
from paymend.engine.clock import SystemClock
from paymend.providers.registry import ChannelSpec
from paymend.providers.simulator import SimulatedProvider, SimulatorSettings
from paymend.providers.wechatpay import WechatpayProvider, build
from paymend.sim.wechatpay_api import MerchantKeys, WechatpayApi

API = "http://wechatpay.test"


@cache
def keys() -> MerchantKeys:
    """One set of keys for the whole run: RSA key generation is slow."""
    return MerchantKeys.generate()


def face(**settings: Any) -> WechatpayApi:
    channel = SimulatedProvider("wechatpay_face", SimulatorSettings(**settings), SystemClock())
    return WechatpayApi(keys(), channel)


def spec(
    base_url: str = API,
    transport: httpx.AsyncBaseTransport | None = None,
    credentials: dict[str, str] | None = None,
    **options: Any,
) -> ChannelSpec:
    return ChannelSpec(
        name="wechatpay_cn",
        type="wechatpay",
        base_url=base_url,
        capabilities=Capabilities(frozenset({"wechat_pay"}), frozenset({"CNY"})),
        options={**keys().options(), "bill_days": 1, **options},
        credentials=credentials or keys().credentials(),
        transport=transport,
    )


def connector(api: WechatpayApi, **options: Any) -> WechatpayProvider:
    transport = httpx.ASGITransport(app=api, raise_app_exceptions=False)
    return build(spec(transport=transport, **options), SystemClock())
