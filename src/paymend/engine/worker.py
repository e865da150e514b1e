"""The worker: finishes what checkout calls could not, from the durable job table.

Each sweep runs the emergency playbooks over channel health, relays outbox events to
webhook deliveries, asks providers about attempts a crash left pending, and runs the due
jobs: status queries for unknown outcomes (with backoff), attempts decided after a
checkout's deadline, refunds to resend, webhooks to deliver. It runs as a task inside
`paymend serve`, or as `paymend worker` processes (several on PostgreSQL: jobs are
claimed with FOR UPDATE SKIP LOCKED).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import timedelta

from paymend.engine.payments import PaymentService
from paymend.engine.playbooks import PlaybookRunner
from paymend.engine.reconcile import reconcile
from paymend.engine.webhooks import WebhookSender
from paymend.observability import get_logger
from paymend.store import jobs
from paymend.store import payments as repo
from paymend.store.jobs import Job, JobKind

log = get_logger("paymend.worker")

MAX_TRIES = {
    JobKind.SETTLE_ATTEMPT: 300,  # about a day at the 10-minute cap: then ops look
    JobKind.RUN_ATTEMPT: 10,  # its waits while ops pause its bank or region count too
    JobKind.RESEND_REFUND: 60,
    JobKind.DELIVER_WEBHOOK: 1000,  # the schedule itself stops after three days
}


def _backoff(kind: JobKind, tries: int) -> float:
    base, cap = {
        JobKind.SETTLE_ATTEMPT: (2.0, 600.0),
        JobKind.RUN_ATTEMPT: (5.0, 60.0),
        JobKind.RESEND_REFUND: (5.0, 3600.0),
        JobKind.DELIVER_WEBHOOK: (10.0, 43200.0),
    }[kind]
    return float(min(cap, base * 2.0 ** min(tries - 1, 20)))


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    interval_s: float = 1.0
    pending_after_s: float = 60.0  # a pending attempt this old, with no job, was orphaned
    lease_s: float = 120.0  # a claimed job another worker may take over after this
    batch: int = 50
    reconcile_every_s: float = 600.0  # compare with the providers' settlement reports


@dataclass(slots=True)
class SweepReport:
    relayed: int = 0
    orphans: int = 0
    done: dict[str, int] = field(default_factory=dict)
    retried: int = 0
    buried: int = 0

    @property
    def busy(self) -> bool:
        return bool(self.relayed or self.orphans or self.done or self.retried or self.buried)


class Worker:
    def __init__(
        self,
        service: PaymentService,
        settings: WorkerSettings | None = None,
        webhooks: WebhookSender | None = None,
        playbooks: PlaybookRunner | None = None,
    ) -> None:
        self.service = service
        self.playbooks = playbooks
        self.settings = settings or WorkerSettings()
        self.webhooks = webhooks or WebhookSender(service.store, service.clock, service.ids)
        self._reconciled_at: float | None = None

    async def sweep(self) -> SweepReport:
        report = SweepReport()
        store, clock, s = self.service.store, self.service.clock, self.settings
        if self.playbooks is not None:
            with _logged("playbooks_failed", "-"):
                await self.playbooks.tick()
        report.relayed = await self.webhooks.relay()
        now = clock.now()
        orphans = await store.run(
            lambda conn: repo.orphaned_attempts(
                conn, now - timedelta(seconds=s.pending_after_s), s.batch
            )
        )
        for attempt in orphans:
            with _logged("orphan_settle_failed", attempt.id):
                await self.service.settle_attempt(attempt.id)
                report.orphans += 1
        claimed = await store.run(
            lambda conn: jobs.claim(conn, clock.now(), timedelta(seconds=s.lease_s), s.batch)
        )
        for job in claimed:
            await self._run(job, report)
        await self._maybe_reconcile()
        return report

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

    async def _run(self, job: Job, report: SweepReport) -> None:
        store, clock = self.service.store, self.service.clock
        wait: float | None
        error = error_type = ""
        try:
            wait = await self._handle(job)
        except Exception as exc:
            log.exception("job_failed", job_id=job.id, kind=job.kind.value)
            wait, error = _backoff(job.kind, job.tries), f"{type(exc).__name__}: {exc}"
            error_type = type(exc).__name__
        now = clock.now()
        if wait is None:
            await store.run(lambda conn: jobs.done(conn, job.id, now))
            report.done[job.kind.value] = report.done.get(job.kind.value, 0) + 1
        elif job.tries >= MAX_TRIES[job.kind]:
            log.warning(
                "ops_alert",
                reason="job given up",
                job_id=job.id,
                kind=job.kind.value,
                subject_id=job.subject_id,
                error_type=error_type,  # the message stays in the job row, out of the logs
            )
            await store.run(lambda conn: jobs.bury(conn, job.id, error or "too many tries", now))
            report.buried += 1
        else:
            run_at = now + timedelta(seconds=wait)
            await store.run(lambda conn: jobs.retry(conn, job.id, run_at, error, now))
            report.retried += 1

    async def _handle(self, job: Job) -> float | None:
        """Run one job. None when finished; else seconds until it runs again."""
        if job.kind is JobKind.SETTLE_ATTEMPT:
            settled = await self.service.settle_attempt(job.subject_id)
            return None if settled else _backoff(job.kind, job.tries)
        if job.kind is JobKind.RUN_ATTEMPT:
            return await self.service.run_attempt(job.subject_id)
        if job.kind is JobKind.RESEND_REFUND:
            final = await self.service.refunds.resend(job.subject_id)
            return None if final else _backoff(job.kind, job.tries)
        return await self.webhooks.deliver(job.subject_id)

    async def drain(self, max_sweeps: int = 1000) -> int:
        """Sweep until nothing is due now (tests and the lab). Returns the sweeps made."""
        for n in range(1, max_sweeps + 1):
            if not (await self.sweep()).busy:
                return n
        return max_sweeps

    async def run(self, stop: asyncio.Event) -> None:
        """Sweep every `interval_s` until `stop` is set. Errors are logged, never fatal."""
        try:
            while not stop.is_set():
                with _logged("worker_sweep_failed", "-"):
                    report = await self.sweep()
                    if report.busy:
                        log.info(
                            "worker_sweep",
                            relayed=report.relayed,
                            orphans=report.orphans,
                            done=report.done,
                            retried=report.retried,
                            buried=report.buried,
                        )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.settings.interval_s)
        finally:
            await self.webhooks.close()


@contextlib.contextmanager
def _logged(event: str, subject: str):  # type: ignore[no-untyped-def]
    try:
        yield
    except Exception:
        log.exception(event, subject=subject)
