"""A payment whose every way is shut for the moment waits for one instead of failing:
its only channel down (circuit open), or its bank paused by a playbook or by ops. It
stays `processing` with no attempt (nothing is called), the worker starts it once let
through, within its `settle_within_s`, and fails it uncalled when that is over."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from paymend.domain.ids import MerchantId
from paymend.domain.money import Money
from paymend.domain.payment import Customer, PaymentStatus
from paymend.engine.clock import LoopClock
from paymend.engine.commands import PayCommand
from paymend.engine.payments import PaymentService
from paymend.engine.virtual_time import run_virtual
from paymend.engine.worker import Worker
from paymend.health.keys import channel_key
from paymend.providers.simulator import SimulatedProvider
from paymend.store import jobs
from paymend.store.database import Store
from tests.helpers import make_merchant, service, simulator


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url, inline=True)
    yield s
    s.close()


def wallet(mid: MerchantId, i: int, bank: str = "ICBC") -> PayCommand:
    return PayCommand(
        merchant_id=mid,
        order_id=f"o-{i}",
        amount=Money(1000 + i, "CNY"),
        method="alipay",
        bank=bank,
        region="CN-East",
        customer=Customer(f"c{i}", "zh-CN"),
    )


def one_channel(store: Store) -> tuple[LoopClock, SimulatedProvider, PaymentService]:
    """A wallet with one channel (sim_a takes alipay, nothing else does); call in the loop."""
    clock = LoopClock()
    sim = simulator(clock=clock, methods=("alipay",), latency_p50_ms=100, latency_p99_ms=100)
    return clock, sim, service(store, {"sim_a": sim}, clock, timeout_s=2.0, deadline_s=3.0)


def charges(sim: SimulatedProvider, payment_id: str) -> int:
    return len(sim.ledger.charged(payment_id))


async def status(svc: PaymentService, payment_id: str) -> PaymentStatus:
    return (await svc.get(payment_id)).payment.status


def test_a_payment_whose_only_channel_is_down_waits_for_it(store: Store) -> None:
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock, sim, svc = one_channel(store)
        worker = Worker(svc)
        assert (await svc.pay(wallet(mid, 0))).payment.status is PaymentStatus.SUCCEEDED
        sim.settings = dataclasses.replace(sim.settings, outage=True)
        calls, i = sim.calls, 1
        while (waiting := await svc.pay(wallet(mid, i))).attempts:  # the outage: these
            assert waiting.payment.status is PaymentStatus.FAILED  # fail until the circuit
            calls, i = sim.calls, i + 1  # opens; then the next one is not called: it
        assert svc.health.state(channel_key("sim_a")) == "open"  # waits for the channel
        assert 2 <= i <= 6 and waiting.payment.status is PaymentStatus.PROCESSING
        assert sim.calls == calls
        pending = store.run_sync(lambda c: jobs.pending(c, waiting.payment.id))
        assert [j["kind"] for j in pending] == ["start_payment"]

        for _ in range(3):  # still down: it waits, and only early probes reach sim_a
            await clock.sleep(5)
            await worker.drain()
        assert await status(svc, waiting.payment.id) is PaymentStatus.PROCESSING
        assert sim.calls - calls <= 2  # one early probe every 10 s at most

        sim.settings = dataclasses.replace(sim.settings, outage=False)
        back = clock.monotonic()
        for n in range(60):  # back: new payments probe, the circuit closes, and the
            await clock.sleep(1)  # waiting payment goes within seconds
            await svc.pay(wallet(mid, 100 + n))
            await worker.drain()
            if await status(svc, waiting.payment.id) is not PaymentStatus.PROCESSING:
                break
        assert clock.monotonic() - back <= 30
        view = await svc.get(waiting.payment.id)
        assert view.payment.status is PaymentStatus.SUCCEEDED
        assert [a.provider for a in view.attempts] == ["sim_a"]
        assert "after waiting" in (view.attempts[0].reason or "")
        assert charges(sim, waiting.payment.id) == 1  # exactly one charge

    run_virtual(scenario())


def test_a_payment_that_is_never_let_through_fails_uncalled_at_its_deadline(
    store: Store,
) -> None:
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock, sim, svc = one_channel(store)
        worker = Worker(svc)
        sim.settings = dataclasses.replace(sim.settings, outage=True)
        i = 0
        while (waiting := await svc.pay(wallet(mid, i))).attempts:  # until the circuit opens
            i += 1
        assert waiting.payment.status is PaymentStatus.PROCESSING
        looks = 0
        while await status(svc, waiting.payment.id) is PaymentStatus.PROCESSING:
            await clock.sleep(5)
            await worker.drain()
            looks += 1
            assert looks < 100
        view = await svc.get(waiting.payment.id)
        assert view.payment.status is PaymentStatus.FAILED
        assert view.payment.failure_code == "provider_unavailable"
        assert view.attempts == []  # never called, nothing to query
        waited = (view.payment.updated_at - view.payment.created_at).total_seconds()  # type: ignore[operator]
        assert svc.settings.settle_within_s <= waited <= svc.settings.settle_within_s + 6
        assert charges(sim, waiting.payment.id) == 0

    run_virtual(scenario())


async def pause_bank(svc: PaymentService, actor: str) -> str:
    control = await svc.controls.set(
        "pause", "bank", "CMB", None, "CMB fails everywhere", actor, svc.providers
    )
    return control.id


def test_a_playbooks_pause_lets_waiting_payments_through_as_its_probes(store: Store) -> None:
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock, sim, svc = one_channel(store)
        worker = Worker(svc)
        await pause_bank(svc, "playbook:bank-down")
        probe = await svc.pay(wallet(mid, 1, "CMB"))  # one payment a second passes
        assert probe.payment.status is PaymentStatus.SUCCEEDED
        calls = sim.calls
        held = [await svc.pay(wallet(mid, i, "CMB")) for i in range(2, 5)]
        assert {v.payment.status for v in held} == {PaymentStatus.PROCESSING}
        assert sim.calls == calls  # the pause holds them: nothing called
        other = await svc.pay(wallet(mid, 5, "ICBC"))
        assert other.payment.status is PaymentStatus.SUCCEEDED  # only CMB is paused
        for _ in range(10):
            await clock.sleep(2)
            await worker.drain()
        for v in held:  # each passed as a later second's probe
            assert await status(svc, v.payment.id) is PaymentStatus.SUCCEEDED
            assert charges(sim, v.payment.id) == 1

    run_virtual(scenario())


def test_an_operators_pause_lets_nothing_through_until_ended(store: Store) -> None:
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock, sim, svc = one_channel(store)
        worker = Worker(svc)
        control = await pause_bank(svc, "operator:ops-lin")
        calls = sim.calls
        held = await svc.pay(wallet(mid, 1, "CMB"))
        canceled = await svc.pay(wallet(mid, 2, "CMB"))
        assert held.payment.status is PaymentStatus.PROCESSING
        await svc.cancel(mid, canceled.payment.id)
        for _ in range(10):  # a minute: no probe passes an operator's pause
            await clock.sleep(6)
            await worker.drain()
        assert sim.calls == calls
        assert await status(svc, held.payment.id) is PaymentStatus.PROCESSING
        await svc.controls.end(control, "bank back", "operator:ops-lin")
        await clock.sleep(0.1)
        await worker.drain()  # ending the pause woke the waiting payment at once
        assert await status(svc, held.payment.id) is PaymentStatus.SUCCEEDED
        assert await status(svc, canceled.payment.id) is PaymentStatus.CANCELED
        assert charges(sim, canceled.payment.id) == 0  # a canceled one is never called
        assert sim.calls == calls + 1

        await pause_bank(svc, "operator:ops-lin")  # a pause that outlives the deadline
        late = await svc.pay(wallet(mid, 3, "CMB"))
        for _ in range(60):
            await clock.sleep(6)
            await worker.drain()
        view = await svc.get(late.payment.id)
        assert view.payment.status is PaymentStatus.FAILED
        assert view.payment.failure_code == "issuer_unavailable" and view.attempts == []

    run_virtual(scenario())
