"""The Adyen connector and the Checkout face in-process, as the lab runs them: the engine
on the virtual-time loop, HTTP through `httpx.ASGITransport` (no sockets), so the face's
latencies and a charging timeout cost no real time and the connector's wire code is
measured too."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from paymend.domain.ids import MerchantId
from paymend.domain.money import Money
from paymend.domain.payment import AttemptStatus, Customer, PaymentStatus
from paymend.engine.clock import LoopClock
from paymend.engine.commands import PayCommand
from paymend.engine.virtual_time import run_virtual
from paymend.providers.adyen import build
from paymend.providers.simulator import SimulatedProvider, SimulatorSettings
from paymend.sim.adyen_checkout import AdyenCheckout
from paymend.store.database import Store
from tests.helpers import make_merchant, service
from tests.providers.adyen.face import keys, spec


@pytest.fixture
def store(sqlite_url: str) -> Iterator[Store]:
    s = Store(sqlite_url, inline=True)
    yield s
    s.close()


def command(mid: MerchantId, token: str, order: str) -> PayCommand:
    return PayCommand(
        merchant_id=mid,
        order_id=order,
        amount=Money(8888, "EUR"),
        method="card",
        token=token,
        customer=Customer("c1", "en", None, None),
        trace_id="0af7651916cd43dd8448eb211c80319c",
    )


def test_a_charging_timeout_settles_in_virtual_time_through_the_wire_code(store: Store) -> None:
    mid, _ = make_merchant(store)

    async def scenario() -> tuple[list[PaymentStatus], list[AttemptStatus], float]:
        clock = LoopClock()
        settings = SimulatorSettings(methods=("card",), latency_p50_ms=300, latency_p99_ms=900)
        checkout = AdyenCheckout(keys(), SimulatedProvider("adyen_face", settings, clock))
        adyen = build(spec(transport=httpx.ASGITransport(app=checkout)), clock)
        engine = service(store, {"adyen_eu": adyen}, clock, timeout_s=5.0, deadline_s=20.0)
        start = clock.monotonic()
        ok = await engine.pay(command(mid, "sim_approve", "o-1"))
        slow = await engine.pay(command(mid, "sim_timeout_charged", "o-2"))
        elapsed = clock.monotonic() - start
        checkout.release()
        statuses = [ok.payment.status, slow.payment.status]
        assert len(checkout.channel.ledger.charged(slow.attempts[0].idempotency_key)) == 1
        return statuses, [a.status for a in slow.attempts], elapsed

    statuses, attempts, virtual = run_virtual(scenario())
    assert statuses == [PaymentStatus.SUCCEEDED, PaymentStatus.SUCCEEDED]
    assert attempts == [AttemptStatus.SUCCEEDED]  # the repeat found the payment: no second
    assert virtual >= 5.0  # the provider timeout passed, in virtual time, not waited for
