"""The worker: finishes what the checkout's call could not.

Today it settles attempts whose outcome is unknown (or left pending by a crash) by
querying the provider, and resends refunds that are still pending under their original
idempotency key. It runs as a task inside `paymend serve`, or alone as `paymend worker`.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paymend.domain.errors import PaymendError
from paymend.domain.payment import Attempt, AttemptStatus, Refund, RefundStatus
from paymend.engine.payments import PaymentService
from paymend.observability import get_logger
from paymend.store import payments as repo
from paymend.store import refunds as refund_repo
from paymend.store.tables import refunds

log = get_logger("paymend.worker")


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    interval_s: float = 1.0
    unknown_after_s: float = 2.0  # first status query this long after an unknown outcome
    pending_after_s: float = 60.0  # a pending attempt this old was orphaned by a crash
    batch: int = 100


@dataclass(frozen=True, slots=True)
class SweepReport:
    resolved: int
    still_unknown: int
    refunds_resent: int


class Worker:
    def __init__(self, service: PaymentService, settings: WorkerSettings | None = None) -> None:
        self.service = service
        self.settings = settings or WorkerSettings()

    async def sweep(self) -> SweepReport:
        s, now = self.settings, self.service.clock.now()

        def due(conn: Connection) -> tuple[list[Attempt], list[Refund]]:
            found = repo.attempts_in_status(
                conn, AttemptStatus.UNKNOWN, now - timedelta(seconds=s.unknown_after_s), s.batch
            ) + repo.attempts_in_status(
                conn, AttemptStatus.PENDING, now - timedelta(seconds=s.pending_after_s), s.batch
            )
            ids = conn.execute(
                sa.select(refunds.c.id)
                .where(
                    refunds.c.status == RefundStatus.PENDING.value,
                    refunds.c.updated_at <= now - timedelta(seconds=s.unknown_after_s),
                )
                .limit(s.batch)
            ).scalars()
            return found, [refund_repo.get(conn, i) for i in ids]

        attempts, pending_refunds = await self.service.store.run(due)
        resolved = unknown = resent = 0
        for attempt in attempts:
            try:
                status = await self.service.resolve_unknown(attempt)
            except PaymendError as exc:
                log.warning("resolve_failed", attempt_id=attempt.id, code=exc.code)
                continue
            except Exception:
                log.exception("resolve_crashed", attempt_id=attempt.id)
                continue
            if status in (AttemptStatus.UNKNOWN, AttemptStatus.PENDING):
                unknown += 1
            else:
                resolved += 1
        for refund in pending_refunds:
            try:
                await self.service.resend_refund(refund)
                resent += 1
            except PaymendError as exc:
                log.warning("refund_resend_failed", refund_id=refund.id, code=exc.code)
            except Exception:
                log.exception("refund_resend_crashed", refund_id=refund.id)
        return SweepReport(resolved, unknown, resent)

    async def run(self, stop: asyncio.Event) -> None:
        """Sweep every `interval_s` until `stop` is set. Errors are logged, never fatal."""
        while not stop.is_set():
            try:
                report = await self.sweep()
                if report.resolved or report.refunds_resent:
                    log.info("worker_sweep", **report.__dict__)
            except PaymendError as exc:
                log.warning("worker_sweep_failed", code=exc.code, message=exc.message)
            except Exception:
                log.exception("worker_sweep_crashed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.settings.interval_s)
