"""Job kinds dispatch through a registry: each kind to its handler and retry schedule;
a job of a kind nobody registered is buried with an alert, never run as another kind."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from paymend.engine.clock import LoopClock
from paymend.engine.job_registry import JobRegistry, Retry, paymend_jobs
from paymend.engine.virtual_time import run_virtual
from paymend.engine.webhooks import WebhookSender
from paymend.engine.worker import Worker
from paymend.store import jobs, tables
from paymend.store.database import Store
from paymend.store.jobs import Job, JobKind
from tests.helpers import service, simulator


@pytest.fixture
def store(sqlite_url: str) -> Iterator[Store]:
    s = Store(sqlite_url, inline=True)
    yield s
    s.close()


def test_paymend_registers_a_handler_for_every_kind_it_enqueues(store: Store) -> None:
    clock = LoopClock()
    svc = service(store, {"sim_a": simulator(clock=clock)}, clock)
    registry = paymend_jobs(svc, WebhookSender(store, clock, svc.ids))
    # send_notice and send_ops_alert are enqueued by customer notices and ops alerts
    # only, and registered with them (tests/engine/test_customer_notices.py and
    # test_ops_alerts.py run them)
    assert registry.kinds() == frozenset(JobKind) - {JobKind.SEND_NOTICE, JobKind.SEND_OPS_ALERT}


def test_a_kind_is_registered_once() -> None:
    registry = JobRegistry()

    async def handle(job: Job) -> float | None:
        return None

    registry.register(JobKind.RESEND_REFUND, handle, Retry(1.0, 2.0, 3))
    with pytest.raises(ValueError, match="registered already"):
        registry.register(JobKind.RESEND_REFUND, handle, Retry(1.0, 2.0, 3))


def test_the_retry_schedule_doubles_up_to_its_cap() -> None:
    retry = Retry(2.0, 600.0, 300)
    assert [retry.after(n) for n in (1, 2, 3, 10, 300)] == [2.0, 4.0, 8.0, 600.0, 600.0]


def test_a_job_of_an_unregistered_kind_is_buried_not_run_as_another(store: Store) -> None:
    clock = LoopClock()
    svc = service(store, {"sim_a": simulator(clock=clock)}, clock)
    ran: list[str] = []

    async def refund(job: Job) -> float | None:
        ran.append(job.subject_id)
        return None

    registry = JobRegistry()  # knows refunds only
    registry.register(JobKind.RESEND_REFUND, refund, Retry(5.0, 60.0, 3))

    async def scenario() -> None:
        now = clock.now()

        def enqueue(conn: sa.Connection) -> None:
            jobs.enqueue(conn, "job_a", JobKind.DELIVER_WEBHOOK, "whd_x", now, now)
            jobs.enqueue(conn, "job_b", JobKind.RESEND_REFUND, "re_x", now, now)

        await store.run(enqueue)
        report = await Worker(svc, registry=registry).sweep()
        assert (report.done, report.buried) == ({"resend_refund": 1}, 1)

    run_virtual(scenario())
    assert ran == ["re_x"]
    assert store.run_sync(lambda conn: jobs.pending(conn)) == []
    (dead,) = store.run_sync(
        lambda conn: (
            conn.execute(sa.select(tables.jobs).where(tables.jobs.c.status == "dead"))
            .mappings()
            .all()
        )
    )
    assert dead["kind"] == "deliver_webhook"
    assert "no handler is registered" in dead["last_error"]
