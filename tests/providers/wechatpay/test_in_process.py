"""The WeChat Pay connector and the v3 face in-process, as the lab runs them
(tests/providers/harness.py, `charging_timeout_in_virtual_time`)."""

from __future__ import annotations

import httpx

from paymend.domain.payment import AttemptStatus, PaymentStatus
from paymend.engine.clock import LoopClock
from paymend.engine.payments import PaymentView
from paymend.engine.virtual_time import run_virtual
from paymend.providers.simulator import SimulatedProvider, SimulatorSettings
from paymend.providers.wechatpay import build
from paymend.sim.wechatpay_api import WechatpayApi
from paymend.store.database import Store
from tests.helpers import make_merchant, service
from tests.providers.harness import InProcess, charging_timeout_in_virtual_time
from tests.providers.wechatpay.face import keys, spec

SETUP = InProcess(
    "wechatpay_cn",
    "wechat_pay",
    "CNY",
    face=lambda channel: WechatpayApi(keys(), channel),
    connector=lambda transport, clock: build(spec(transport=transport), clock),
    charged_as=lambda attempt: attempt.id,
)


def test_a_charging_timeout_settles_in_virtual_time_through_the_wire_code(sqlite_url: str) -> None:
    charging_timeout_in_virtual_time(
        sqlite_url,
        SETUP,
    )


def test_a_payment_code_never_confirmed_is_reversed_by_the_workers_queries(
    sqlite_url: str,
) -> None:
    """The buyer never enters the password: the checkout's query and the worker's
    (`settle_attempt`, every 5 s here) find USERPAYING until, 30 s (virtual) after the
    codepay, the connector reverses the order; the payment fails, nothing charged."""
    store = Store(sqlite_url, inline=True)
    mid, _ = make_merchant(store)

    async def scenario() -> tuple[PaymentView, list[str], float]:
        clock = LoopClock()
        api = WechatpayApi(keys(), SimulatedProvider("wechatpay_face", SimulatorSettings(), clock))
        wechat = build(spec(transport=httpx.ASGITransport(app=api)), clock)
        engine = service(store, {"wechatpay_cn": wechat}, clock)
        start = clock.monotonic()
        view = await engine.pay(SETUP.command(mid, "sim_3ds", "o-1"))
        assert view.payment.status is PaymentStatus.PROCESSING
        while not await engine.settle_attempt(view.attempts[0].id):
            await clock.sleep(5.0)
        api.release()
        assert api.channel.ledger.charged(view.attempts[0].id) == []
        return await engine.get(view.payment.id), api.calls, clock.monotonic() - start

    try:
        view, calls, elapsed = run_virtual(scenario())
    finally:
        store.close()
    assert view.payment.status is PaymentStatus.FAILED
    ((status, raw_code),) = [(a.status, a.raw_code) for a in view.attempts]
    assert (status, raw_code) == (AttemptStatus.FAILED, "USERPAYING")  # the call's own code
    assert calls[-1].endswith("/reverse") and calls.count(calls[-1]) == 1
    assert 30.0 <= elapsed < 40.0
