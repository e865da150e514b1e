"""Job kinds and their handlers: what the worker does with each kind of durable job.

A job (store/jobs.py) names a kind and a subject; the registry maps the kind to the
handler that runs it and to the retry schedule it follows when the handler asks to run
again later or fails. The runtime registers paymend's kinds (`paymend_jobs`); a new
kind (a notification to send, a settlement file to fetch) registers its own. A job of
a kind nobody registered is an error the worker reports and buries, never something
another handler guesses at.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from paymend.engine.customer_notices import CustomerNotices
from paymend.engine.ops_alerts import OpsAlerts
from paymend.engine.payments import PaymentService
from paymend.engine.webhooks import WebhookSender
from paymend.store.jobs import Job, JobKind

Handler = Callable[[Job], Awaitable[float | None]]
"""Runs one job: None when it is finished, else seconds until it runs again."""


@dataclass(frozen=True, slots=True)
class Retry:
    """Waits between tries, doubling from `base_s` up to `cap_s`; after `max_tries` the
    job is buried and ops are alerted."""

    base_s: float
    cap_s: float
    max_tries: int

    def after(self, tries: int) -> float:
        """Seconds before the next try, `tries` made so far."""
        return float(min(self.cap_s, self.base_s * 2.0 ** min(tries - 1, 20)))


@dataclass(frozen=True, slots=True)
class JobType:
    handle: Handler
    retry: Retry


class JobRegistry:
    def __init__(self) -> None:
        self._types: dict[JobKind, JobType] = {}

    def register(self, kind: JobKind, handle: Handler, retry: Retry) -> None:
        if kind in self._types:
            raise ValueError(f"job kind '{kind}' is registered already")
        self._types[kind] = JobType(handle, retry)

    def get(self, kind: JobKind) -> JobType | None:
        """The handler of `kind` and its retry schedule; None when nobody registered it."""
        return self._types.get(kind)

    def kinds(self) -> frozenset[JobKind]:
        return frozenset(self._types)


def paymend_jobs(
    service: PaymentService,
    webhooks: WebhookSender,
    notices: CustomerNotices | None = None,
    ops_alerts: OpsAlerts | None = None,
) -> JobRegistry:
    """The kinds paymend's own engine enqueues, with their handlers and schedules;
    `send_notice` when customer notices are configured, `send_ops_alert` when ops
    routes are."""
    jobs = JobRegistry()
    settle = Retry(2.0, 600.0, 300)  # about a day at the 10-minute cap: then ops look

    async def settle_attempt(job: Job) -> float | None:
        settled = await service.settle_attempt(job.subject_id)
        return None if settled else settle.after(job.tries)

    async def run_attempt(job: Job) -> float | None:
        return await service.run_attempt(job.subject_id)

    async def start_payment(job: Job) -> float | None:
        return await service.settlement.waiting.start(job.subject_id, job.tries)

    resend = Retry(5.0, 3600.0, 60)

    async def resend_refund(job: Job) -> float | None:
        final = await service.refunds.resend(job.subject_id)
        return None if final else resend.after(job.tries)

    async def deliver_webhook(job: Job) -> float | None:
        return await webhooks.deliver(job.subject_id)

    jobs.register(JobKind.SETTLE_ATTEMPT, settle_attempt, settle)
    # its waits while ops pause its bank or region count too
    # (one look every 10 s until `settle_within_s`: engine/settlement.py)
    jobs.register(JobKind.RUN_ATTEMPT, run_attempt, Retry(5.0, 60.0, 40))
    # a payment waiting out a pause looks a few times a minute until its deadline
    # (engine/waiting.py): its own waits, and enough tries to reach that deadline
    jobs.register(JobKind.START_PAYMENT, start_payment, Retry(2.0, 15.0, 400))
    jobs.register(JobKind.RESEND_REFUND, resend_refund, resend)
    # the delivery's own schedule stops after three days (notify/webhooks.py)
    jobs.register(JobKind.DELIVER_WEBHOOK, deliver_webhook, Retry(10.0, 43200.0, 1000))
    if notices is not None:
        customer_notices = notices

        async def send_notice(job: Job) -> float | None:
            return await customer_notices.deliver(job.subject_id)

        # the notice follows the policy's own waits and ends itself (sent, dropped or
        # failed); quiet hours and the hourly limit postpone it many times: a high cap
        jobs.register(JobKind.SEND_NOTICE, send_notice, Retry(10.0, 600.0, 1000))
    if ops_alerts is not None:
        pager = ops_alerts

        async def send_ops_alert(job: Job) -> float | None:
            return await pager.deliver(job.subject_id)

        # the routes file's retry schedule ends each message itself (sent or failed)
        jobs.register(JobKind.SEND_OPS_ALERT, send_ops_alert, Retry(10.0, 600.0, 100))
    return jobs
