"""What the worker finishes after the checkout call: continuations, late charges,
cancellations, 3-D Secure, and the job queue itself."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from functools import partial

import pytest

from paymend.domain.events import EventType
from paymend.domain.ids import AttemptId, PaymentId
from paymend.domain.payment import AttemptStatus, PaymentStatus, RefundKind, RefundStatus
from paymend.engine.clock import LoopClock
from paymend.engine.virtual_time import run_virtual
from paymend.engine.worker import Worker
from paymend.store import jobs, ops_events, outbox
from paymend.store.database import Store
from tests.engine.test_pay import pay_cmd
from tests.helpers import NOW, make_merchant, service, simulator


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url, inline=True)
    yield s
    s.close()


def test_a_failover_past_the_deadline_is_run_by_the_worker(store: Store) -> None:
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock = LoopClock()
        down = simulator(clock=clock, outage=True, latency_p50_ms=0)
        up = simulator("sim_b", clock=clock)
        svc = service(store, {"sim_a": down, "sim_b": up}, clock, deadline_s=0.01)
        view = await svc.pay(pay_cmd(mid))
        assert view.payment.status is PaymentStatus.PROCESSING  # answered within the deadline
        assert [a.status for a in view.attempts] == [AttemptStatus.FAILED]
        assert up.calls == 0
        due = await store.run(lambda c: jobs.pending(c))
        assert [j["kind"] for j in due] == ["run_attempt"]
        await Worker(svc).drain()
        final = await svc.get(view.payment.id)
        assert final.payment.status is PaymentStatus.SUCCEEDED
        assert [a.provider for a in final.attempts] == ["sim_a", "sim_b"]
        events = [e.type for e in await store.run(lambda c: outbox.for_subject(c, view.payment.id))]
        assert events[-1] == "payment.succeeded"

    run_virtual(scenario())


def test_a_charge_landing_after_a_cancel_is_refunded_automatically(store: Store) -> None:
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock = LoopClock()
        sim = simulator(clock=clock, hang_s=60)
        svc = service(store, {"sim_a": sim}, clock, timeout_s=3, deadline_s=3)
        view = await svc.pay(pay_cmd(mid, "sim_timeout_charged"))
        assert view.payment.status is PaymentStatus.PROCESSING
        # the shop gives up on the order while the outcome is still unknown
        canceled = await svc.cancel(mid, view.payment.id)
        assert canceled.payment.status is PaymentStatus.CANCELED
        await clock.sleep(2)
        await Worker(svc).drain()
        final = await svc.get(view.payment.id)
        assert final.payment.status is PaymentStatus.CANCELED
        assert final.attempts[0].status is AttemptStatus.REVERSED
        (refund,) = final.refunds
        assert refund.kind is RefundKind.DUPLICATE and refund.status is RefundStatus.SUCCEEDED
        assert sim.ledger.net_charged(view.payment.id) == 0  # the customer got it back
        types = [e.type for e in await store.run(lambda c: outbox.for_subject(c, view.payment.id))]
        assert EventType.DUPLICATE_CHARGE.value in types
        assert "refund.succeeded" in types

    run_virtual(scenario())


def test_3ds_then_confirm_completes_the_held_charge(store: Store) -> None:
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock = LoopClock()
        sim = simulator(clock=clock)
        svc = service(store, {"sim_a": sim}, clock)
        view = await svc.pay(pay_cmd(mid, "sim_3ds"))
        assert view.payment.status is PaymentStatus.REQUIRES_ACTION
        assert sim.ledger.net_charged(view.payment.id) == 0
        done = await svc.confirm(mid, view.payment.id)
        assert done.payment.status is PaymentStatus.SUCCEEDED
        assert [a.status for a in done.attempts] == [AttemptStatus.SUCCEEDED]
        assert sim.ledger.net_charged(view.payment.id) == 5000
        with pytest.raises(Exception) as again:
            await svc.confirm(mid, view.payment.id)
        assert getattr(again.value, "code", "") == "payment_not_awaiting_action"

    run_virtual(scenario())


def test_a_final_payment_cannot_be_canceled(store: Store) -> None:
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock = LoopClock()
        svc = service(store, {"sim_a": simulator(clock=clock)}, clock)
        view = await svc.pay(pay_cmd(mid))
        with pytest.raises(Exception) as refused:
            await svc.cancel(mid, view.payment.id)
        assert getattr(refused.value, "code", "") == "payment_not_cancelable"

    run_virtual(scenario())


def test_unknown_outcomes_are_asked_again_with_backoff(store: Store) -> None:
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock = LoopClock()
        sim = simulator(clock=clock, hang_s=60, latency_p50_ms=3000, latency_p99_ms=3000)
        svc = service(store, {"sim_a": sim}, clock, timeout_s=5, deadline_s=3)
        view = await svc.pay(pay_cmd(mid, "sim_lost_response"))
        sim.settings.outage = True  # the provider cannot even be asked for a while
        worker = Worker(svc)
        waits = []
        for _ in range(4):
            (due,) = await store.run(lambda c: jobs.pending(c, view.attempts[0].id))
            waits.append(due["run_at"])
            await clock.sleep((due["run_at"] - clock.now()).total_seconds())
            await worker.sweep()
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(waits)]
        assert gaps == sorted(gaps) and gaps[-1] > gaps[0]  # backing off
        sim.settings.outage = False
        (due,) = await store.run(lambda c: jobs.pending(c, view.attempts[0].id))
        await clock.sleep((due["run_at"] - clock.now()).total_seconds())
        await worker.drain()
        final = await svc.get(view.payment.id)
        assert final.payment.status is PaymentStatus.SUCCEEDED
        assert sim.ledger.net_charged(view.payment.id) == 5000

    run_virtual(scenario())


@pytest.mark.postgres
def test_workers_claim_disjoint_jobs_with_skip_locked(postgres_url: str) -> None:
    store = Store(postgres_url, inline=True, pool_size=4)
    try:
        for i in range(40):
            store.run_sync(
                partial(
                    jobs.enqueue,
                    job_id=f"job_{i:02d}",
                    kind=jobs.JobKind.RUN_ATTEMPT,
                    subject_id=f"att_{i}",
                    run_at=NOW,
                    now=NOW,
                )
            )
        barrier = threading.Barrier(4)
        taken: list[list[str]] = []

        def claimer() -> None:
            barrier.wait()
            got = store.run_sync(lambda c: jobs.claim(c, NOW, timedelta(minutes=1), 15))
            taken.append([j.id for j in got])

        threads = [threading.Thread(target=claimer) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        flat = [j for batch in taken for j in batch]
        assert len(flat) == len(set(flat)) == 40  # every job once, none twice
        again = store.run_sync(lambda c: jobs.claim(c, NOW, timedelta(minutes=1), 50))
        assert again == []  # leased
        later = store.run_sync(
            lambda c: jobs.claim(c, NOW + timedelta(minutes=2), timedelta(minutes=1), 50)
        )
        assert len(later) == 40 and all(j.tries == 2 for j in later)  # lease expired: retaken
    finally:
        store.close()


def test_a_late_success_after_failover_is_found_and_refunded(store: Store) -> None:
    """The provider's query lags its own charges: the timed-out charge looked absent, so
    paymend failed over and the second channel charged too. Reconciliation finds the
    extra charge and sends it back; the payment keeps exactly one."""
    from paymend.engine.reconcile import reconcile

    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock = LoopClock()
        a = simulator(clock=clock, hang_s=60, query_lag_s=30)
        b = simulator("sim_b", clock=clock)
        b.ledger = a.ledger  # one report of the customer's card across both channels
        svc = service(store, {"sim_a": a, "sim_b": b}, clock, timeout_s=2)
        await clock.sleep(3600)  # well past time zero: the lag must follow the charge's time
        view = await svc.pay(pay_cmd(mid, "sim_timeout_charged"))
        assert view.payment.status is PaymentStatus.SUCCEEDED
        assert [x.provider for x in view.attempts] == ["sim_a", "sim_b"]
        assert len(a.ledger.charged(view.payment.id)) == 2  # charged twice at providers
        before = await reconcile(svc)
        (mismatch,) = before.mismatches
        assert mismatch.kind == "charged_not_recorded" and mismatch.provider == "sim_a"
        await reconcile(svc, fix=True)
        await Worker(svc).drain()
        # ops hear of it once (engine/ops_events.py), and of the charge sent back
        found = store.run_sync(lambda c: ops_events.of_kind(c, "reconciliation"))
        assert [(e.severity, e.facts["attempt_id"]) for e in found] == [
            ("critical", mismatch.attempt_id)
        ]
        (refunded,) = store.run_sync(lambda c: ops_events.of_kind(c, "duplicate_charge"))
        assert refunded.facts["attempt_id"] == mismatch.attempt_id
        final = await svc.get(view.payment.id)
        assert final.payment.status is PaymentStatus.SUCCEEDED
        assert [x.status for x in final.attempts] == [
            AttemptStatus.REVERSED,
            AttemptStatus.SUCCEEDED,
        ]
        assert a.ledger.net_charged(view.payment.id) == 5000  # exactly one charge stays
        after = await reconcile(svc)
        assert after.as_dict()["ok"], after.as_dict()

    run_virtual(scenario())


def test_reconciliation_of_a_clean_day_finds_nothing(store: Store) -> None:
    from paymend.engine.reconcile import reconcile

    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock = LoopClock()
        sim = simulator(clock=clock, success_rate=0.7, declines={"INSUFFICIENT_FUNDS": 1})
        svc = service(store, {"sim_a": sim}, clock)
        for i in range(30):
            view = await svc.pay(pay_cmd(mid, order=f"o-{i}"))
            if i % 5 == 0 and view.payment.status is PaymentStatus.SUCCEEDED:
                from paymend.engine.commands import RefundCommand

                await svc.refund(RefundCommand(mid, view.payment.id, 1000))
        report = await reconcile(svc)
        assert report.charges_compared > 15
        assert report.as_dict()["ok"], report.as_dict()

    run_virtual(scenario())


def test_a_call_a_crash_left_pending_is_a_technical_failure(store: Store) -> None:
    """The attempt row was written, the process died before the provider saw the call:
    the orphan sweep's query finds nothing, and the payment goes on to another channel
    instead of being told its order is closed."""
    from paymend.domain.payment import Attempt
    from paymend.store import payments as repo

    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock = LoopClock()
        a, b = simulator(clock=clock), simulator("sim_b", clock=clock)
        svc = service(store, {"sim_a": a, "sim_b": b}, clock)
        view = await svc.pay(pay_cmd(mid))  # a normal payment, to copy rows from
        payment = view.payment
        # what a crash leaves: a processing payment with a pending attempt, never sent
        orphan_payment = replace(
            payment, id=PaymentId("pay_orphan"), order_id="o-orphan", version=0
        )
        orphan_payment.status = PaymentStatus.PROCESSING
        attempt = Attempt(
            AttemptId("att_orphan"), orphan_payment.id, 1, "sim_a", created_at=clock.now()
        )

        def write(conn):  # type: ignore[no-untyped-def]
            repo.insert_payment(conn, orphan_payment, clock.now())
            repo.insert_attempt(conn, attempt)

        await store.run(write)
        await clock.sleep(120)
        await Worker(svc).drain()
        final = await svc.get("pay_orphan")
        assert final.payment.status is PaymentStatus.SUCCEEDED
        first, second = final.attempts
        assert (first.raw_code, first.unified_code, first.decision) == (
            "INTERRUPTED",
            "network_error",
            "failover",
        )
        assert second.provider == "sim_b"

    run_virtual(scenario())


def test_a_timed_out_call_that_waits_for_3ds_asks_the_customer(store: Store) -> None:
    """The answer 'authenticate first' was lost in a timeout; the status query brings it
    back, and the payment waits for the customer instead of staying unknown."""
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock = LoopClock()
        sim = simulator(clock=clock, latency_p50_ms=4000, latency_p99_ms=4000)
        svc = service(store, {"sim_a": sim}, clock, timeout_s=5, deadline_s=3)
        view = await svc.pay(pay_cmd(mid, "sim_3ds"))
        assert view.payment.status is PaymentStatus.PROCESSING
        await clock.sleep(2)
        await Worker(svc).drain()
        waiting = await svc.get(view.payment.id)
        assert waiting.payment.status is PaymentStatus.REQUIRES_ACTION
        assert waiting.attempts[0].status is AttemptStatus.REQUIRES_ACTION
        assert waiting.payment.failure_code == "authentication_required"
        sim.settings.latency_p50_ms = sim.settings.latency_p99_ms = 0  # the provider recovers
        done = await svc.confirm(mid, view.payment.id)
        assert done.payment.status is PaymentStatus.SUCCEEDED
        assert sim.ledger.net_charged(view.payment.id) == 5000

    run_virtual(scenario())


def test_a_charge_answered_after_a_cancel_is_refunded(store: Store) -> None:
    """The merchant cancels while the provider is still answering; the answer is 'charged'.
    The payment stays canceled and the customer gets the money back."""
    import asyncio

    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock = LoopClock()
        sim = simulator(clock=clock, latency_p50_ms=2000, latency_p99_ms=2000)
        svc = service(store, {"sim_a": sim}, clock, timeout_s=5, deadline_s=3)
        paying = asyncio.create_task(svc.pay(pay_cmd(mid)))
        await clock.sleep(1)
        (pending,) = await svc.find_by_order(mid, "o-1")
        await svc.cancel(mid, pending.payment.id)
        with pytest.raises(Exception) as stopped:
            await paying
        assert getattr(stopped.value, "code", "") == "payment_in_flight"
        await Worker(svc).drain()
        final = await svc.get(pending.payment.id)
        assert final.payment.status is PaymentStatus.CANCELED
        assert [a.status for a in final.attempts] == [AttemptStatus.REVERSED]
        (refund,) = final.refunds
        assert refund.kind is RefundKind.DUPLICATE and refund.status is RefundStatus.SUCCEEDED
        assert sim.ledger.net_charged(pending.payment.id) == 0

    run_virtual(scenario())


def test_a_scheduled_failover_never_calls_a_channel_ops_paused_meanwhile(store: Store) -> None:
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock = LoopClock()
        down = simulator(clock=clock, outage=True, latency_p50_ms=0)
        paused, spare = simulator("sim_b", clock=clock), simulator("sim_c", clock=clock)
        providers = {"sim_a": down, "sim_b": paused, "sim_c": spare}
        svc = service(store, providers, clock, deadline_s=0.01)
        view = await svc.pay(pay_cmd(mid))
        due = await store.run(lambda c: jobs.pending(c))
        assert [j["kind"] for j in due] == ["run_attempt"]  # sim_b, after the deadline
        await svc.controls.set("pause", "channel", "sim_b", None, "maintenance", "ops", providers)
        await Worker(svc).drain()
        final = await svc.get(view.payment.id)
        assert paused.calls == 1 and paused.ledger.all_charges() == []  # asked, never charged
        assert [a.provider for a in final.attempts] == ["sim_a", "sim_b", "sim_c"]
        assert final.attempts[1].status is AttemptStatus.FAILED
        assert final.payment.status is PaymentStatus.SUCCEEDED

    run_virtual(scenario())


def test_a_scheduled_retry_waits_while_its_bank_is_paused(store: Store) -> None:
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock = LoopClock()
        down = simulator(clock=clock, outage=True, latency_p50_ms=0)
        up = simulator("sim_b", clock=clock)
        providers = {"sim_a": down, "sim_b": up}
        svc = service(store, providers, clock, deadline_s=0.01)
        view = await svc.pay(replace(pay_cmd(mid), bank="CMB"))
        pause = await svc.controls.set("pause", "bank", "CMB", None, "bank says", "ops", providers)
        await Worker(svc).drain()
        assert up.calls == 0
        waiting = await svc.get(view.payment.id)
        assert waiting.payment.status is PaymentStatus.PROCESSING
        await svc.controls.end(pause.id, "bank is back", "ops")
        (job,) = await store.run(lambda c: jobs.pending(c))
        await clock.sleep((job["run_at"] - clock.now()).total_seconds())
        await Worker(svc).drain()
        final = await svc.get(view.payment.id)
        assert final.payment.status is PaymentStatus.SUCCEEDED
        assert [a.provider for a in final.attempts] == ["sim_a", "sim_b"]

    run_virtual(scenario())
