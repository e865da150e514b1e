"""After a crash the worker finishes what the dead process owned at once, many at a time;
a worker that stops cleanly gives back what it holds.

A crash is made for real: the checkout task is cancelled while the provider holds the
call (as a SIGKILL would leave it: payment and pending attempt committed, nothing
after), under an instance whose process has exited. Virtual time (engine/virtual_time)
makes provider waits cost nothing and lets the tests read how long recovery took.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta

import pytest

from paymend.domain.ids import MerchantId
from paymend.domain.payment import AttemptStatus, PaymentStatus
from paymend.engine.clock import LoopClock
from paymend.engine.ids import IdFactory
from paymend.engine.liveness import LivenessSettings, Presence, this_host
from paymend.engine.payments import PaymentService
from paymend.engine.runtime import build_payment_service
from paymend.engine.settings import EngineSettings
from paymend.engine.virtual_time import run_virtual
from paymend.engine.worker import Worker, WorkerSettings
from paymend.providers.simulator import SimulatedProvider
from paymend.store import instances, jobs
from paymend.store.database import Store
from paymend.store.instances import Instance
from tests.engine.test_pay import pay_cmd
from tests.helpers import make_merchant, service, simulator

pytestmark = pytest.mark.skipif(
    this_host().boot_id is None, reason="needs Linux /proc to tell pids on this host"
)
LEASE = timedelta(seconds=120)
QUERY_S = 2.0  # each status query takes this long at the provider


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url, inline=True)
    yield s
    s.close()


async def a_process_that_died(store: Store, clock: LoopClock) -> str:
    """An instance registered by a process that has since exited; its last beat is now."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=30)
    host, now = this_host(), clock.now()
    row = Instance(
        "ins_dead",
        "serve",
        host.hostname,
        host.boot_id,
        host.pid_namespace,
        child.pid,
        None,
        now,
        now,
    )
    await store.run(lambda c: instances.register(c, row))
    return row.id


async def crash_mid_call(svc: PaymentService, mid: MerchantId, orders: int) -> list[str]:
    """Start `orders` checkouts and kill them while the provider holds their calls; the
    ids of the payments they left."""
    tasks = [
        asyncio.create_task(svc.pay(pay_cmd(mid, "sim_timeout_charged", order=f"o-{i}")))
        for i in range(orders)
    ]
    await svc.clock.sleep(0.5)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    left = [(await svc.find_by_order(mid, f"o-{i}"))[0] for i in range(orders)]
    assert {v.attempts[-1].status for v in left} == {AttemptStatus.PENDING}
    return [v.payment.id for v in left]


def restarted(
    store: Store, sim: SimulatedProvider, clock: LoopClock
) -> tuple[PaymentService, Presence]:
    """The process started after the crash: a service and the instance it runs as."""
    svc = build_payment_service(
        store,
        {"sim_a": sim},
        clock,
        EngineSettings(provider_timeout_s=5.0, seed=2),
        IdFactory(seed=2),  # not the crashed process's sequence
    )
    presence = Presence(
        store,
        clock,
        "serve",
        LivenessSettings(1.0, 30.0),
        on_start=lambda instance_id: setattr(svc, "owner", instance_id),
    )
    return svc, presence


def test_attempts_of_a_dead_process_are_settled_at_once_and_concurrently(store: Store) -> None:
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock = LoopClock()
        sim = simulator(clock=clock, hang_s=60.0)
        crashed = service(store, {"sim_a": sim}, clock)
        crashed.owner = await a_process_that_died(store, clock)
        paid = await crash_mid_call(crashed, mid, 10)
        svc, presence = restarted(store, sim, clock)
        sim.settings.latency_p50_ms = sim.settings.latency_p99_ms = QUERY_S * 1000
        worker = Worker(svc, WorkerSettings(pending_after_s=60.0, dead_after_s=30.0))
        before = await worker.sweep()
        assert before.orphans == 0  # its owner may still be calling: not touched yet
        await presence.start()
        started = clock.monotonic()
        report = await worker.sweep()
        took = clock.monotonic() - started
        assert report.orphans == 10
        assert took < 2 * QUERY_S, f"10 status queries of {QUERY_S}s took {took:.1f}s"
        for pid in paid:
            view = await svc.get(pid)
            assert view.payment.status is PaymentStatus.SUCCEEDED
            assert sim.ledger.net_charged(pid) == view.payment.amount.minor

    run_virtual(scenario())


async def a_status_query_owed(svc: PaymentService, mid: MerchantId) -> str:
    """A checkout that timed out, charged: it answered `processing` and left a job."""
    view = await svc.pay(pay_cmd(mid, "sim_timeout_charged", order="o-late"))
    assert view.payment.status is PaymentStatus.PROCESSING
    (job,) = await svc.store.run(lambda c: jobs.pending(c))
    assert job["kind"] == "settle_attempt"
    return str(view.payment.id)


def test_a_job_held_by_a_dead_worker_is_taken_over_without_waiting_for_its_lease(
    store: Store,
) -> None:
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock = LoopClock()
        sim = simulator(clock=clock, hang_s=60.0)
        checkout = service(store, {"sim_a": sim}, clock, deadline_s=1.0)
        pid = await a_status_query_owed(checkout, mid)
        dead = await a_process_that_died(store, clock)
        await clock.sleep(5)  # the job is due
        held = await store.run(lambda c: jobs.claim(c, clock.now(), LEASE, 10, owner=dead))
        assert len(held) == 1  # the dead worker had claimed it, for two minutes
        svc, presence = restarted(store, sim, clock)
        worker = Worker(svc, WorkerSettings(lease_s=120.0, dead_after_s=30.0))
        assert (await worker.sweep()).started == 0  # not known dead yet: the lease holds
        await presence.start()
        report = await worker.sweep()
        assert report.done == {"settle_attempt": 1}
        assert (await svc.get(pid)).payment.status is PaymentStatus.SUCCEEDED

    run_virtual(scenario())


def test_a_job_held_by_a_live_worker_waits_for_its_lease(store: Store) -> None:
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock = LoopClock()
        sim = simulator(clock=clock, hang_s=60.0)
        checkout = service(store, {"sim_a": sim}, clock, deadline_s=1.0)
        await a_status_query_owed(checkout, mid)
        await clock.sleep(5)
        now = clock.now()
        remote = Instance("ins_remote", "worker", "elsewhere", "b", "p", 7, None, now, now)
        await store.run(lambda c: instances.register(c, remote))
        await store.run(lambda c: jobs.claim(c, clock.now(), LEASE, 10, owner=remote.id))
        svc, presence = restarted(store, sim, clock)
        await presence.start()
        worker = Worker(svc, WorkerSettings(lease_s=120.0, dead_after_s=600.0))
        assert (await worker.sweep()).started == 0  # alive (it beat just now), leased
        await clock.sleep(LEASE.total_seconds() + 1)
        assert (await worker.sweep()).done == {"settle_attempt": 1}

    run_virtual(scenario())


def test_a_stopping_worker_cancels_long_jobs_and_releases_them(store: Store) -> None:
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock = LoopClock()
        sim = simulator(clock=clock, hang_s=60.0)
        checkout = service(store, {"sim_a": sim}, clock, deadline_s=1.0)
        pid = await a_status_query_owed(checkout, mid)
        svc, presence = restarted(store, sim, clock)
        await presence.start()
        sim.settings.latency_p50_ms = sim.settings.latency_p99_ms = 4000  # a slow query
        worker = Worker(svc, WorkerSettings(interval_s=0.5, stop_grace_s=1.0))
        stop = asyncio.Event()
        running = asyncio.create_task(worker.run(stop))
        while worker.running == 0:  # until the worker is inside the status query
            await clock.sleep(0.5)
        stop.set()
        asked = clock.monotonic()
        await running
        assert clock.monotonic() - asked <= 1.0 + 0.01  # the grace, not the 4 s query
        (job,) = await store.run(lambda c: jobs.pending(c))
        assert (job["owner"], job["lease_until"]) == (None, None)  # free for others now
        assert (await svc.get(pid)).payment.status is PaymentStatus.PROCESSING

    run_virtual(scenario())
