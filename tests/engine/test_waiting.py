"""A payment whose every way is paused waits out the pause instead of failing: its only
channel paused, or its bank paused by a playbook or by ops. It stays `processing` with
no attempt (nothing is called), the worker starts it once let through within its
`settle_within_s`, and fails it uncalled when that is over. An open circuit never makes
a payment wait: it is routed around, probed or tried as the last resort, as before."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import timedelta
from functools import partial

import pytest

from paymend.console.i18n import translate
from paymend.console.payments import Story, timeline
from paymend.domain.ids import MerchantId
from paymend.domain.money import Money
from paymend.domain.payment import Customer, PaymentStatus
from paymend.engine.clock import LoopClock
from paymend.engine.commands import PayCommand
from paymend.engine.payments import PaymentService
from paymend.engine.virtual_time import run_virtual
from paymend.engine.worker import Worker, WorkerSettings
from paymend.health.keys import channel_key
from paymend.providers.simulator import SimulatedProvider
from paymend.store import jobs, outbox
from paymend.store import payments as repo
from paymend.store.database import Store
from tests.helpers import make_merchant, service, simulator

OPERATOR = "operator:ops-lin"


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


def one_channel(
    store: Store, clock: LoopClock | None = None, sim: SimulatedProvider | None = None
) -> tuple[LoopClock, SimulatedProvider, PaymentService]:
    """A wallet with one channel (sim_a takes alipay, nothing else does); call in the loop."""
    clock = clock or LoopClock()
    sim = sim or simulator(clock=clock, methods=("alipay",), latency_p50_ms=100, latency_p99_ms=100)
    return clock, sim, service(store, {"sim_a": sim}, clock, timeout_s=2.0, deadline_s=3.0)


def charges(sim: SimulatedProvider, payment_id: str) -> int:
    return len(sim.ledger.charged(payment_id))


async def status(svc: PaymentService, payment_id: str) -> PaymentStatus:
    return (await svc.get(payment_id)).payment.status


async def pause(svc: PaymentService, scope: str, value: str, actor: str, ends_in_s: float) -> str:
    ends_at = svc.clock.now() + timedelta(seconds=ends_in_s)
    control = await svc.controls.set(
        "pause", scope, value, None, "incident", actor, svc.providers, ends_at=ends_at
    )
    return control.id


def test_a_payment_whose_only_channel_is_paused_waits_and_goes_when_it_ends(
    store: Store,
) -> None:
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock, sim, svc = one_channel(store)
        worker = Worker(svc)
        control = await pause(svc, "channel", "sim_a", OPERATOR, 3600)
        view = await svc.pay(wallet(mid, 1))
        assert view.payment.status is PaymentStatus.PROCESSING and view.attempts == []
        assert sim.calls == 0
        pid = view.payment.id
        pending = store.run_sync(lambda c: jobs.pending(c, pid))
        assert [j["kind"] for j in pending] == ["start_payment"]
        told = store.run_sync(lambda c: outbox.for_subject(c, pid))  # why, on its timeline
        assert [e.type for e in told] == ["payment.created", "payment.processing"]
        assert "every channel for alipay is paused by ops (sim_a)" in told[1].payload["reason"]
        story = Story(view, told, [], [], [], [])
        lines = timeline(story, partial(translate, "en"))  # what customer service reads
        assert ("Reason", told[1].payload["reason"]) in lines[-1].facts

        for _ in range(6):  # a minute: it looks a few times, nothing is called
            await clock.sleep(10)
            await worker.drain()
        assert await status(svc, pid) is PaymentStatus.PROCESSING and sim.calls == 0

        await svc.controls.end(control, "acquirer back", OPERATOR)
        await clock.sleep(0.1)
        await worker.drain()  # ending the pause woke the waiting payment at once
        done = await svc.get(pid)
        assert done.payment.status is PaymentStatus.SUCCEEDED
        assert [a.provider for a in done.attempts] == ["sim_a"]
        assert "after waiting 60s" in (done.attempts[0].reason or "")
        assert charges(sim, pid) == 1 and sim.calls == 1

    run_virtual(scenario())


def test_a_pause_that_ends_by_its_time_lets_the_payment_go(store: Store) -> None:
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock, sim, svc = one_channel(store)
        worker = Worker(svc)
        await pause(svc, "bank", "CMB", OPERATOR, 40)
        view = await svc.pay(wallet(mid, 1, "CMB"))
        assert view.payment.status is PaymentStatus.PROCESSING and sim.calls == 0
        for _ in range(8):
            await clock.sleep(7)
            await worker.drain()
        done = await svc.get(view.payment.id)  # within a look (15 s) of its end
        assert done.payment.status is PaymentStatus.SUCCEEDED
        waited = (done.attempts[0].created_at - done.payment.created_at).total_seconds()  # type: ignore[operator]
        assert 40 <= waited <= 56
        assert charges(sim, view.payment.id) == 1

    run_virtual(scenario())


async def until_settled(
    clock: LoopClock, svc: PaymentService, worker: Worker, payment_id: str
) -> None:
    for _ in range(100):
        if await status(svc, payment_id) is not PaymentStatus.PROCESSING:
            return
        await clock.sleep(5)
        await worker.drain()
    raise AssertionError("still processing")


def test_a_payment_never_let_through_fails_uncalled_at_its_deadline(store: Store) -> None:
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock, sim, svc = one_channel(store)
        worker = Worker(svc)
        control = await pause(svc, "channel", "sim_a", OPERATOR, 3600)
        shut = await svc.pay(wallet(mid, 1))  # its only channel paused
        await until_settled(clock, svc, worker, shut.payment.id)
        await svc.controls.end(control, "back", OPERATOR)
        await pause(svc, "bank", "CMB", OPERATOR, 3600)
        banked = await svc.pay(wallet(mid, 2, "CMB"))  # its bank paused
        await until_settled(clock, svc, worker, banked.payment.id)
        settle_within = svc.settings.settle_within_s
        for view, code in ((shut, "provider_unavailable"), (banked, "issuer_unavailable")):
            after = await svc.get(view.payment.id)
            assert after.payment.status is PaymentStatus.FAILED
            assert after.payment.failure_code == code
            assert "not called: waited until its deadline" in (after.payment.failure_message or "")
            assert after.attempts == []  # never called, nothing to query
            waited = (after.payment.updated_at - after.payment.created_at).total_seconds()  # type: ignore[operator]
            assert settle_within <= waited <= settle_within + 16
        assert sim.calls == 0

    run_virtual(scenario())


def test_a_playbooks_pause_lets_waiting_payments_through_as_its_probes(store: Store) -> None:
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock, sim, svc = one_channel(store)
        worker = Worker(svc)
        await pause(svc, "bank", "CMB", "playbook:bank-down", 3600)
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
            after = await svc.get(v.payment.id)
            assert after.payment.status is PaymentStatus.SUCCEEDED
            assert "a probe through the pause" in (after.attempts[0].reason or "")
            assert charges(sim, v.payment.id) == 1

    run_virtual(scenario())


def test_two_workers_starting_one_waiting_payment_charge_it_once(store: Store) -> None:
    """Both read the payment before either wrote its attempt (a job run twice, two
    workers): the attempt's write is guarded by the payment's version, so only one
    calls the provider; a cancel read stale is refused the same way."""
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock, sim, first = one_channel(store)
        _, _, second = one_channel(store, clock, sim)
        control = await pause(first, "channel", "sim_a", OPERATOR, 3600)
        views = [await first.pay(wallet(mid, i)) for i in (1, 2)]
        canceled = await first.pay(wallet(mid, 3))
        read = store.run_sync(lambda c: repo.get_payment(c, canceled.payment.id))
        await second.cancel(mid, canceled.payment.id)  # after the worker read it
        await first.controls.end(control, "back", OPERATOR)
        second.controls.forget()
        assert await first.settlement.waiting.look(read, 1) is None  # its version moved on
        gone = await first.get(canceled.payment.id)
        assert gone.payment.status is PaymentStatus.CANCELED and gone.attempts == []
        for view in views:
            pid = view.payment.id
            stale = [store.run_sync(partial(repo.get_payment, payment_id=pid)) for _ in range(2)]
            assert stale[0].version == stale[1].version
            assert await first.settlement.waiting.look(stale[0], 1) is None
            assert await second.settlement.waiting.look(stale[1], 1) is None
            after = await first.get(pid)
            assert after.payment.status is PaymentStatus.SUCCEEDED
            assert len(after.attempts) == 1 and charges(sim, pid) == 1
        assert sim.calls == 2

    run_virtual(scenario())


def test_an_open_circuit_never_makes_a_payment_wait(store: Store) -> None:
    """The only channel down: its circuit opens, and every payment is still called now
    (the last resort, or the circuit's probe) and settled in the checkout, as before."""
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock, sim, svc = one_channel(store)
        worker = Worker(svc)
        sim.settings = dataclasses.replace(sim.settings, outage=True)
        views = []
        for i in range(12):
            views.append(await svc.pay(wallet(mid, i)))
            await clock.sleep(0.5)
        assert svc.health.state(channel_key("sim_a")) == "open"
        assert all(v.attempts for v in views)  # each one called, none left waiting
        assert {v.payment.status for v in views} == {PaymentStatus.FAILED}
        # called in the checkout, the circuit open or not: the last resort, as on main
        assert all(v.attempts[0].created_at == v.payment.created_at for v in views)
        assert sim.calls >= len(views)
        queued = store.run_sync(lambda c: jobs.pending(c))
        assert "start_payment" not in {j["kind"] for j in queued}

        sim.settings = dataclasses.replace(sim.settings, outage=False)
        await clock.sleep(60)
        await worker.drain()
        back = await svc.pay(wallet(mid, 100))
        assert back.payment.status is PaymentStatus.SUCCEEDED

    run_virtual(scenario())


def test_a_pauses_end_starts_its_waiting_payments_oldest_first_in_their_own_lane(
    store: Store,
) -> None:
    """Every payment that waited is due at once when the pause ends, each with less time
    left the longer it waited: the oldest go first, in slots of their own beside the
    worker's other work."""
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock, sim, svc = one_channel(store)
        control = await pause(svc, "channel", "sim_a", OPERATOR, 3600)
        worker = Worker(svc, WorkerSettings(concurrency=1, starting=2))
        waiting = []
        for i in range(5):  # the longer one waits, the later its next look
            waiting.append((await svc.pay(wallet(mid, i))).payment.id)
            await clock.sleep(10)
            await worker.drain()
        await svc.controls.end(control, "back", OPERATOR)
        due = store.run_sync(lambda c: jobs.pending(c))
        assert [j["subject_id"] for j in due] == waiting  # by age, not by their next look
        assert len({j["run_at"] for j in due}) == 5 and due[-1]["run_at"] <= svc.clock.now()
        await worker.sweep()  # two in their lane, one in the worker's only other slot
        after = [await status(svc, pid) for pid in waiting]
        assert after == [PaymentStatus.SUCCEEDED] * 3 + [PaymentStatus.PROCESSING] * 2
        await worker.sweep()
        assert {await status(svc, pid) for pid in waiting} == {PaymentStatus.SUCCEEDED}
        assert sim.calls == 5

    run_virtual(scenario())
