"""The Alipay connector and the gateway face in-process, as the lab runs them
(tests/providers/harness.py, `charging_timeout_in_virtual_time`)."""

from __future__ import annotations

from paymend.providers.alipay import build
from paymend.sim.alipay_gateway import AlipayGateway
from tests.providers.alipay.face import keys, spec
from tests.providers.harness import InProcess, charging_timeout_in_virtual_time


def test_a_charging_timeout_settles_in_virtual_time_through_the_wire_code(sqlite_url: str) -> None:
    charging_timeout_in_virtual_time(
        sqlite_url,
        InProcess(
            "alipay_cn",
            "alipay",
            "CNY",
            face=lambda channel: AlipayGateway(keys(), channel),
            connector=lambda transport, clock: build(spec(transport=transport), clock),
            charged_as=lambda attempt: f"paymend_{attempt.id}",
        ),
    )
