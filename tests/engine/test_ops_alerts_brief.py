"""An incident that opens and resolves between two sweeps of the planner is still paged,
once, with both in one message; a worker whose every slot waits on a provider still
pages at once (virtual clock, real database and JSON endpoint)."""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from pathlib import Path

import sqlalchemy as sa

from paymend.engine.ids import IdFactory
from paymend.engine.job_registry import JobRegistry, Retry
from paymend.engine.virtual_time import run_virtual
from paymend.engine.worker import Worker, WorkerSettings
from paymend.store import jobs
from paymend.store import ops_alerts as repo
from paymend.store.database import Store
from paymend.store.tables import jobs as job_table
from tests.engine.test_ops_alerts import TOKEN, Hooks, Room, kinds, routes
from tests.engine.test_ops_alerts import hooks as hooks  # the JSON endpoint fixture
from tests.engine.test_ops_alerts import store as store  # the database fixture
from tests.local_server import free_port


def test_an_incident_opened_and_resolved_between_two_sweeps_is_paged_once(
    store: Store, hooks: tuple[Hooks, int], tmp_path: Path
) -> None:
    ep, port = hooks
    text_routes = routes(tmp_path, port, free_port())

    async def scenario() -> None:
        room = Room(store, text_routes)
        worker = room.worker()
        old = room.open(channel="sim_b")  # came and went long before the worker ran
        room.resolve(old)
        await room.clock.sleep(2 * 3600)
        await worker.sweep()
        incident_id = room.open()
        room.event(incident_id, "opened the circuit of sim_a")
        await room.clock.sleep(0.4)  # less than the worker's interval
        room.resolve(incident_id)
        await room.minutes(worker, 0.5)

        (title,) = ep.titles(f"/oncall/{TOKEN}")
        assert title == "[CRITICAL] opened and resolved: Channel sim_a is down"
        message = ep.got[0][1]["message"]
        assert "Resolved" in message and "after 0s" in message
        assert "action: opened the circuit of sim_a" in message
        assert "Acknowledge" not in message  # nothing left to acknowledge
        assert ep.titles("/leads") == []  # the first level only
        assert {(k, r) for k, r, _ in kinds(store, incident_id)} == {
            ("resolved", "oncall-hook"),
            ("resolved", "oncall-mail"),
        }
        assert kinds(store, old) == []
        page = store.run_sync(lambda c: repo.get_page(c, incident_id))
        assert page is not None and page.status == repo.CLOSED

    run_virtual(scenario())


def test_a_page_does_not_wait_behind_jobs_that_hold_every_slot(
    store: Store, hooks: tuple[Hooks, int], tmp_path: Path
) -> None:
    _, port = hooks
    text_routes = routes(tmp_path, port, free_port())

    def claimed(kind: jobs.JobKind) -> int:
        rows = store.run_sync(
            lambda c: c.execute(sa.select(job_table.c.kind, job_table.c.tries)).all()
        )
        return sum(1 for k, tries in rows if k == kind.value and tries > 0)

    async def scenario(telling: int) -> int:
        room = Room(store, text_routes)
        room.ids = room.pager.ids = IdFactory(seed=50 + telling)  # two runs, one database
        registry = JobRegistry()

        async def hang(_job: jobs.Job) -> None:  # a status query waiting on its provider
            await room.clock.sleep(60)

        async def page(job: jobs.Job) -> float | None:
            return await room.pager.deliver(job.subject_id)

        registry.register(jobs.JobKind.SETTLE_ATTEMPT, hang, Retry(1.0, 1.0, 3))
        registry.register(jobs.JobKind.SEND_OPS_ALERT, page, Retry(1.0, 1.0, 3))
        settings = WorkerSettings(concurrency=2, telling=telling)
        worker = Worker(room.svc, settings, registry=registry, ops_alerts=room.pager)
        earlier = room.clock.now() - timedelta(seconds=5)  # due before the page: first in line
        for i in range(4):
            room.store.run_sync(
                partial(
                    jobs.enqueue,
                    job_id=f"job_q{telling}{i}",
                    kind=jobs.JobKind.SETTLE_ATTEMPT,
                    subject_id=f"a{i}",
                    run_at=earlier,
                    now=earlier,
                )
            )
        incident_id = room.open(channel=f"sim_{telling}")
        await worker.sweep(wait=False)  # the page is planned, its jobs due now
        await worker.sweep(wait=False)  # both slots still wait on their providers
        pages = claimed(jobs.JobKind.SEND_OPS_ALERT)
        assert claimed(jobs.JobKind.SETTLE_ATTEMPT) == 2
        await worker.join()
        store.run_sync(lambda c: c.execute(job_table.delete()))
        assert incident_id
        return pages

    assert run_virtual(scenario(telling=0)) == 0  # all in one line: the page waits a minute
    assert run_virtual(scenario(telling=4)) == 2  # its own lane: both routes' at once
