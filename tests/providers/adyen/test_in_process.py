"""The Adyen connector and the Checkout face in-process, as the lab runs them
(tests/providers/harness.py, `charging_timeout_in_virtual_time`)."""

from __future__ import annotations

from paymend.providers.adyen import build
from paymend.sim.adyen_checkout import AdyenCheckout
from tests.providers.adyen.face import keys, spec
from tests.providers.harness import InProcess, charging_timeout_in_virtual_time


def test_a_charging_timeout_settles_in_virtual_time_through_the_wire_code(sqlite_url: str) -> None:
    charging_timeout_in_virtual_time(
        sqlite_url,
        InProcess(
            "adyen_eu",
            "card",
            "EUR",
            face=lambda channel: AdyenCheckout(keys(), channel),
            connector=lambda transport, clock: build(spec(transport=transport), clock),
            charged_as=lambda attempt: attempt.idempotency_key,
            locale="en",
        ),
    )
