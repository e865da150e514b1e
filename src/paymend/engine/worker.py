"""The worker: finishes what checkout calls could not, from the durable job table.

Each sweep runs the emergency playbooks over channel health, pages ops about incidents
(engine/ops_alerts.py, when routes are configured), relays outbox events to
webhook deliveries, asks providers about attempts a crash left pending, and runs the due
jobs: status queries for unknown outcomes (with backoff), attempts decided after a
checkout's deadline, refunds to resend, webhooks to deliver, each through the handler
its kind registered (engine/job_registry.py). It runs as a task inside
`paymend serve`, or as `paymend worker` processes (several on PostgreSQL: jobs are
claimed with FOR UPDATE SKIP LOCKED).

Jobs and orphaned attempts run concurrently, at most `concurrency` at once, each as its
own task: a provider that hangs until its timeout holds one slot, not the whole queue.
Messages to people (customer notices, ops pages) have `telling` slots of their own
besides, claimed first: in an outage every other slot may wait on a provider for
seconds, and a notice due after its hold must not wait behind them. Payments that
waited out a pause (engine/waiting.py) have `starting` slots too: a pause's end makes
all of them due at once, each a checkout's call, and each with little time left.
A sweep claims no more than the free slots, so nothing claimed waits on a slot while its
lease runs; when a sweep filled every slot the next one starts as soon as one frees. On
SQLite the database work still goes through the one writer thread; only the waits on
providers overlap. An attempt whose owner instance is known dead is orphaned at once
(engine/liveness.py); one with no owner after `pending_after_s`. A job whose owner is
dead is taken over without waiting for its lease. Every hour it also gathers SQLite's
planner statistics again when the payments outgrew them (store/statistics.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from paymend.engine.job_registry import JobRegistry, paymend_jobs
from paymend.engine.ops_alerts import OpsAlerts
from paymend.engine.ops_events import OpsEventKind, raise_event
from paymend.engine.payments import PaymentService
from paymend.engine.playbooks import PlaybookRunner
from paymend.engine.reconcile import reconcile
from paymend.engine.webhooks import WebhookSender
from paymend.observability import get_logger
from paymend.store import jobs, statistics
from paymend.store import payments as repo
from paymend.store.database import Connection
from paymend.store.jobs import Job

log = get_logger("paymend.worker")
TELLING = "telling"  # the lane of messages to people, and its jobs' task keys
TELLING_KINDS = (jobs.JobKind.SEND_NOTICE, jobs.JobKind.SEND_OPS_ALERT)
STARTING = "starting"  # the lane of payments that waited out a pause
STARTING_KINDS = (jobs.JobKind.START_PAYMENT,)


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    interval_s: float = 1.0
    pending_after_s: float = 60.0  # a pending attempt this old, with no job, was orphaned
    lease_s: float = 120.0  # a claimed job another worker may take over after this
    batch: int = 50
    reconcile_every_s: float = 600.0  # compare with the providers' settlement reports
    statistics_every_s: float = 3600.0  # SQLite's planner statistics (store/statistics.py)
    concurrency: int = 16  # jobs and orphaned attempts worked on at once
    # beside those: slots only messages to people take (a customer's notice, an ops page),
    # so an outage's status queries, each holding a slot for seconds, do not hold them up
    telling: int = 4
    # and slots of waiting payments, let through together when their pause ends
    starting: int = 48
    dead_after_s: float = 5.0  # an owner silent this long is dead (engine/liveness.py)
    stop_grace_s: float = 1.0  # on stop, what runs gets this long, then is cancelled


@dataclass(slots=True)
class SweepReport:
    relayed: int = 0
    paged: int = 0  # ops messages planned
    started: int = 0  # jobs and orphaned attempts begun (they end later unless waited for)
    orphans: int = 0
    done: dict[str, int] = field(default_factory=dict)
    retried: int = 0
    buried: int = 0

    @property
    def busy(self) -> bool:
        return bool(
            self.relayed or self.paged or self.orphans or self.done or self.retried or self.buried
        )


class Worker:
    def __init__(
        self,
        service: PaymentService,
        settings: WorkerSettings | None = None,
        webhooks: WebhookSender | None = None,
        playbooks: PlaybookRunner | None = None,
        registry: JobRegistry | None = None,
        ops_alerts: OpsAlerts | None = None,
    ) -> None:
        """`registry`: the handler of each job kind (engine/job_registry.py); by default
        paymend's own kinds, over `service` and `webhooks`. `ops_alerts`: pages ops about
        incidents after the playbooks ran (its jobs are in `registry`)."""
        self.service = service
        self.playbooks = playbooks
        self.ops_alerts = ops_alerts
        self.settings = settings or WorkerSettings()
        self.webhooks = webhooks or WebhookSender(service.store, service.clock, service.ids)
        self.registry = registry or paymend_jobs(service, self.webhooks)
        self._reconciled_at: float | None = None
        self._statistics_at: float | None = None
        self.statistics = statistics.PlannerStatistics()
        # "attempt:<id>", "job:<id>", "telling:<id>", "starting:<id>" (a lane's job)
        self._running: dict[str, asyncio.Task[None]] = {}
        self._saturated = False  # the last sweep filled every slot: more may be due
        self._freed = asyncio.Event()  # a task ended while saturated: sweep again now

    @property
    def owner(self) -> str | None:
        """The instance this worker claims jobs for: the service's (engine/liveness.py)."""
        return self.service.owner

    @property
    def running(self) -> int:
        return len(self._running)

    async def sweep(self, *, wait: bool = True) -> SweepReport:
        """One round. `wait`: return when everything it started has ended (tests, the
        lab's drain); else leave the work running in the background (`run`)."""
        report = SweepReport()
        store, clock, s = self.service.store, self.service.clock, self.settings
        if self.playbooks is not None:
            with _logged("playbooks_failed", "-"):
                await self.playbooks.tick()
        if self.ops_alerts is not None:
            with _logged("ops_alerts_failed", "-"):
                report.paged = await self.ops_alerts.tick()
        report.relayed = await self.webhooks.relay()
        dead_after = timedelta(seconds=s.dead_after_s)
        busy = [key.split(":", 1)[1] for key in self._running if key.startswith("attempt:")]
        now = clock.now()
        orphans = []
        if self._free() > 0:
            limit = min(s.batch, self._free())
            orphans = await store.run(
                lambda conn: repo.orphaned_attempts(
                    conn,
                    now - timedelta(seconds=s.pending_after_s),
                    limit,
                    now=now,
                    dead_after=dead_after,
                    skip=busy,
                )
            )
        for attempt in orphans:
            self._start(f"attempt:{attempt.id}", self._settle_orphan(attempt.id, report))
        report.started += len(orphans)
        for lane, kinds, limit in (
            (TELLING, TELLING_KINDS, min(s.batch, self._free(TELLING))),
            (STARTING, STARTING_KINDS, min(s.batch, self._free(STARTING))),
            ("job", None, min(s.batch, self._free())),
        ):
            claimed = await self._claim(limit, kinds, dead_after) if limit > 0 else []
            for job in claimed:
                self._start(f"{lane}:{job.id}", self._run(job, report))
            report.started += len(claimed)
        self._saturated = self._free() <= 0
        if wait:
            await self.join()
        await self._maybe_reconcile()
        await self._maybe_refresh_statistics()
        return report

    async def _claim(
        self, limit: int, kinds: Sequence[jobs.JobKind] | None, dead_after: timedelta
    ) -> list[Job]:
        clock, lease = self.service.clock, timedelta(seconds=self.settings.lease_s)

        def claim(conn: Connection) -> list[Job]:
            return jobs.claim(
                conn,
                clock.now(),
                lease,
                limit,
                owner=self.owner,
                dead_after=dead_after,
                kinds=kinds,
            )

        return await self.service.store.run(claim)

    def _free(self, lane: str | None = None) -> int:
        """Free slots of the telling or starting lane, or (None) of everything else."""
        if lane is not None:
            size = self.settings.telling if lane == TELLING else self.settings.starting
            return size - sum(k.startswith(f"{lane}:") for k in self._running)
        taken = sum(not k.startswith((f"{TELLING}:", f"{STARTING}:")) for k in self._running)
        return self.settings.concurrency - taken

    def _start(self, key: str, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work, name=key)
        self._running[key] = task

        def ended(_task: asyncio.Task[None]) -> None:
            self._running.pop(key, None)
            if self._saturated:
                self._freed.set()

        task.add_done_callback(ended)

    async def join(self, timeout_s: float | None = None) -> bool:
        """Wait for the work started so far; False when `timeout_s` ran out first."""
        tasks = list(self._running.values())
        if not tasks:
            return True
        _done, pending = await asyncio.wait(tasks, timeout=timeout_s)
        return not pending

    async def _settle_orphan(self, attempt_id: str, report: SweepReport) -> None:
        with _logged("orphan_settle_failed", attempt_id):
            await self.service.settle_attempt(attempt_id)
            report.orphans += 1

    async def _maybe_reconcile(self) -> None:
        now = self.service.clock.monotonic()
        if self._reconciled_at is None:
            self._reconciled_at = now  # not at start: a fresh worker has nothing to compare
            return
        if now - self._reconciled_at < self.settings.reconcile_every_s:
            return
        self._reconciled_at = now
        with _logged("reconcile_failed", "-"):
            await reconcile(self.service, fix=True)

    async def _maybe_refresh_statistics(self) -> None:
        """At the first sweep, then every `statistics_every_s`: the check reads two rows,
        and ANALYZE runs only when the payments outgrew their statistics."""
        now = self.service.clock.monotonic()
        last = self._statistics_at
        if last is not None and now - last < self.settings.statistics_every_s:
            return
        self._statistics_at = now
        with _logged("statistics_failed", "-"):
            if await self.service.store.run(self.statistics.refresh):
                log.info("statistics_refreshed")

    async def _run(self, job: Job, report: SweepReport) -> None:
        store, clock = self.service.store, self.service.clock
        kind = self.registry.get(job.kind)
        wait: float | None
        error = error_type = ""
        if kind is None:
            wait, error = 0.0, f"no handler is registered for job kind '{job.kind.value}'"
            error_type = "UnknownJobKind"
        else:
            try:
                wait = await kind.handle(job)
            except Exception as exc:
                log.exception("job_failed", job_id=job.id, kind=job.kind.value)
                wait, error = kind.retry.after(job.tries), f"{type(exc).__name__}: {exc}"
                error_type = type(exc).__name__
        now = clock.now()
        with _logged("job_not_recorded", job.id):  # its lease runs out: it runs again
            if wait is None:
                await store.run(lambda conn: jobs.done(conn, job.id, now))
                report.done[job.kind.value] = report.done.get(job.kind.value, 0) + 1
            elif kind is None or job.tries >= kind.retry.max_tries:
                log.warning(
                    "ops_alert",
                    reason="job given up",
                    job_id=job.id,
                    kind=job.kind.value,
                    subject_id=job.subject_id,
                    error_type=error_type,  # the message stays in the job row, out of the logs
                )
                await store.run(lambda conn: _bury(conn, job, error, error_type, now))
                report.buried += 1
            else:
                run_at = now + timedelta(seconds=wait)
                await store.run(lambda conn: jobs.retry(conn, job.id, run_at, error, now))
                report.retried += 1

    async def drain(self, max_sweeps: int = 1000) -> int:
        """Sweep until nothing is due now (tests and the lab). Returns the sweeps made."""
        for n in range(1, max_sweeps + 1):
            if not (await self.sweep()).busy:
                return n
        return max_sweeps

    async def run(self, stop: asyncio.Event) -> None:
        """Start a sweep every `interval_s` (at once when a sweep filled every slot and
        one freed, or the relay stopped behind) until `stop` is set. Errors are logged,
        never fatal. On stop, what runs gets `stop_grace_s`, then is cancelled, and the
        jobs still held are released."""
        try:
            while not stop.is_set():
                self._freed.clear()
                started = self.service.clock.monotonic()
                sweep = asyncio.ensure_future(self.sweep(wait=False))
                if not await _until(sweep, stop):
                    await self._cancel([sweep])
                    break
                with _logged("worker_sweep_failed", "-"):
                    report = sweep.result()
                    if report.relayed or report.started:
                        log.info(
                            "worker_sweep",
                            relayed=report.relayed,
                            started=report.started,
                            running=self.running,
                        )
                if self.webhooks.behind:
                    continue  # the outbox grows faster than one sweep relays: no pause
                # sweeps start every interval, however long one took (not interval after it)
                pause = self.settings.interval_s - (self.service.clock.monotonic() - started)
                if pause > 0:  # (a wait of 0 would make coroutines it never runs)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(
                            _first(stop.wait(), self._freed.wait()), timeout=pause
                        )
        finally:
            await self._cancel(list(self._running.values()))
            await self._release()
            await self.webhooks.close()

    async def _cancel(self, tasks: list[asyncio.Future[Any]]) -> None:
        """Give `tasks` the stop grace to end, then cancel the rest and wait for them."""
        if not tasks:
            return
        _done, pending = await asyncio.wait(tasks, timeout=self.settings.stop_grace_s)
        for task in pending:
            task.cancel()
        if pending:
            log.info("worker_stop_cancelled", tasks=len(pending))
            await asyncio.wait(pending)

    async def _release(self) -> None:
        """Give back the jobs this instance still holds: another worker runs them now."""
        owner = self.owner
        if owner is None:
            return
        now = self.service.clock.now()
        with _logged("job_release_failed", owner):
            released = await self.service.store.run(lambda conn: jobs.release(conn, owner, now))
            if released:
                log.info("jobs_released", instance_id=owner, jobs=released)


def _bury(conn: Connection, job: Job, error: str, error_type: str, now: datetime) -> None:
    """Give the job up, and have ops paged about it (once per job)."""
    jobs.bury(conn, job.id, error or "too many tries", now)
    raise_event(
        conn,
        now,
        OpsEventKind.JOB_BURIED,
        job.id,
        f"job given up: {job.kind.value} {job.subject_id}",
        job_id=job.id,
        job_kind=job.kind.value,
        subject_id=job.subject_id,
        tries=job.tries,
        error_type=error_type,  # the message stays in the job row, out of pages and logs
    )


async def _until(work: asyncio.Future[Any], stop: asyncio.Event) -> bool:
    """Wait for `work` or `stop`; True when `work` ended first."""
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({work, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    return work.done()


async def _first(*waits: Coroutine[Any, Any, Any]) -> None:
    """Return when the first of `waits` does; cancel the others."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


@contextlib.contextmanager
def _logged(event: str, subject: str):  # type: ignore[no-untyped-def]
    try:
        yield
    except Exception:
        log.exception(event, subject=subject)
