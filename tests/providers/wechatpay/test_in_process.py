"""The WeChat Pay connector and the v3 face in-process, as the lab runs them
(tests/providers/harness.py, `charging_timeout_in_virtual_time`)."""

from __future__ import annotations

from paymend.providers.wechatpay import build
from paymend.sim.wechatpay_api import WechatpayApi
from tests.providers.harness import InProcess, charging_timeout_in_virtual_time
from tests.providers.wechatpay.face import keys, spec


def test_a_charging_timeout_settles_in_virtual_time_through_the_wire_code(sqlite_url: str) -> None:
    charging_timeout_in_virtual_time(
        sqlite_url,
        InProcess(
            "wechatpay_cn",
            "wechat_pay",
            "CNY",
            face=lambda channel: WechatpayApi(keys(), channel),
            connector=lambda transport, clock: build(spec(transport=transport), clock),
            charged_as=lambda attempt: attempt.id,
        ),
    )
