"""Finishing what a checkout call could not, for the worker: unknown outcomes settled by
a status query, and attempts decided after the checkout's deadline run later.

Both are jobs (store/jobs.py) written with the outcome that makes them needed, and both
are idempotent: a job run twice, or after the payment was canceled or settled another
way, does nothing more. A charge a query finds goes through engine/late_success.py,
which refunds it when the payment no longer wants it.
"""

from __future__ import annotations

import contextlib

from paymend.domain.clock import Clock
from paymend.domain.errors import Conflict
from paymend.domain.payment import Attempt, AttemptStatus, Payment, PaymentStatus
from paymend.engine.attempts import AttemptLoop, Run
from paymend.engine.call_health import payment_context
from paymend.engine.calls import Caller, CallOutcome
from paymend.engine.controls import ControlService, RouteControls
from paymend.engine.late_success import LateSuccess
from paymend.engine.recording import Recorder
from paymend.engine.settings import EngineSettings
from paymend.engine.waiting import Waiting
from paymend.observability import get_logger
from paymend.routing.failover import Router
from paymend.store import payments as repo
from paymend.store.database import Store

log = get_logger("paymend.engine")
PAUSE_WAIT_S = 10.0  # a scheduled retry for a paused bank or region looks again this often
INTERRUPTED = "INTERRUPTED"  # transport code of a call whose answer a crash lost


class Settlement:
    """The worker's side of a payment: unknown outcomes and attempts decided late."""

    def __init__(
        self,
        settings: EngineSettings,
        store: Store,
        clock: Clock,
        controls: ControlService,
        router: Router,
        caller: Caller,
        attempts: AttemptLoop,
        recorder: Recorder,
        late: LateSuccess,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.controls = controls
        self.router = router
        self.caller = caller
        self.attempts = attempts
        self.recorder = recorder
        self.late = late
        self.waiting = Waiting(settings, store, controls, router, attempts, recorder)

    async def _controls(self, payment: Payment) -> RouteControls:
        """The ops controls in force for a stored payment's scope."""
        return await self.controls.for_payment(
            payment.method, payment.bank, payment.region, payment.amount
        )

    def _worker_run(
        self,
        payment: Payment,
        attempts: list[Attempt],
        upto: Attempt,
        controls: RouteControls,
    ) -> Run:
        routed = self.router.route(
            payment_context(payment),
            self.clock.now().timestamp(),
            controls.paused_channels,
            controls.forced,
        )
        return Run(
            routed.channels,
            self.clock.monotonic(),
            self.settings.worker_deadline_s,
            [*(a for a in attempts if a.seq < upto.seq), upto],
            spare=routed.spare,
        )

    async def charged_after_all(self, attempt_id: str, reference: str) -> None:
        """Reconciliation found a charge the store does not count: settle it like a late
        success (engine/late_success.py)."""
        await self.late.charged_after_all(attempt_id, reference)

    async def run_attempt(self, attempt_id: str) -> float | None:
        """Call an attempt decided after its checkout's deadline (a job). None when done,
        else seconds until it runs again. Ops may have paused a scope meanwhile: on a
        paused channel the attempt is settled by a status query instead (never a charge;
        as an attempt a crash left pending is) and the payment fails over around it; with
        its bank or region paused it looks again every PAUSE_WAIT_S until the pause ends
        or lets it through as a probe (a playbook's), or its time is up."""
        loaded = await self.store.run(lambda conn: repo.attempt_with_payment(conn, attempt_id))
        if loaded is None:
            return None
        payment, attempts, attempt = loaded
        if (
            attempt.status is not AttemptStatus.PENDING
            or payment.status is not PaymentStatus.PROCESSING
        ):
            return None  # done already, or the payment was settled or canceled meanwhile
        controls = await self._controls(payment)
        if attempt.provider in controls.paused_channels:  # fail over around it now
            log.info("attempt_not_sent", attempt_id=attempt.id, why="channel paused by ops")
            await self.settle_attempt(attempt.id)
            return None
        if controls.paused_because is not None and not self.controls.take_probe(controls.probe):
            left = self.attempts.time_left(payment)  # every channel: wait for the pause
            if left > 0:  # to end (or, a playbook's, to take it as a probe), or for time
                log.info("attempt_waits_for_pause", attempt_id=attempt.id, left_s=round(left))
                return min(PAUSE_WAIT_S, left)
            await self.settle_attempt(attempt.id)  # no time left: nothing more is called
            return None
        try:
            await self.attempts.drive(
                payment, self._worker_run(payment, attempts, attempt, controls)
            )
        except Conflict:
            return None
        return None

    async def settle_attempt(self, attempt_id: str) -> bool:
        """Ask the provider about an attempt whose outcome is unknown (a job, or the sweep
        for attempts a crash left pending). True when settled, False to ask again later."""
        loaded = await self.store.run(lambda conn: repo.attempt_with_payment(conn, attempt_id))
        if loaded is None:
            return True
        payment, attempts, attempt = loaded
        if attempt.status not in (AttemptStatus.UNKNOWN, AttemptStatus.PENDING):
            return True
        queried = await self.caller.query(attempt, self.settings.provider_timeout_s)
        return await self._settle_known(payment, attempts, attempt, queried)

    async def settle_notified(self, attempt_id: str, told: CallOutcome) -> bool:
        """The provider told paymend (a verified notification) what became of an
        attempt's charge: settled exactly as if a status query had answered `told`. An
        attempt still pending is left to its call in flight (False: the provider should
        tell again later); one settled already changes nothing (a replayed notification).
        A charge on an attempt waiting for the customer (a QR code, a redirect), or on
        one recorded failed, is a success found late (engine/late_success.py)."""
        loaded = await self.store.run(lambda conn: repo.attempt_with_payment(conn, attempt_id))
        if loaded is None:
            return True
        payment, attempts, attempt = loaded
        if attempt.status is AttemptStatus.PENDING:
            return False
        if attempt.status is AttemptStatus.UNKNOWN:
            return await self._settle_known(payment, attempts, attempt, told)
        if told.status is AttemptStatus.SUCCEEDED and attempt.status in (
            AttemptStatus.REQUIRES_ACTION,
            AttemptStatus.FAILED,
        ):
            await self.late.settle(attempt, self._outcome(attempt, told))
        return True

    def _outcome(self, attempt: Attempt, queried: CallOutcome) -> CallOutcome:
        # an attempt a crash left pending never got an answer: it was interrupted, a
        # technical failure of ours, not whatever the status query's code would mean
        return CallOutcome(
            queried.status,
            attempt.raw_code or INTERRUPTED,
            attempt.raw_message or "paymend stopped before the provider's answer was recorded",
            queried.reference or attempt.provider_reference,
            attempt.latency_ms or 0,
            True,
            query_code=queried.raw_code,
        )

    async def _settle_known(
        self, payment: Payment, attempts: list[Attempt], attempt: Attempt, queried: CallOutcome
    ) -> bool:
        """Settle an unknown or pending attempt with what the provider said of it (a
        status query's answer, or a notification's)."""
        if queried.status not in (
            AttemptStatus.SUCCEEDED,
            AttemptStatus.FAILED,
            AttemptStatus.REQUIRES_ACTION,
        ):
            return False
        outcome = self._outcome(attempt, queried)
        self.attempts.found(payment, attempt, queried.status)  # health learns it too
        if queried.status is AttemptStatus.SUCCEEDED:
            await self.late.settle(attempt, outcome)
            return True
        if queried.status is AttemptStatus.REQUIRES_ACTION:
            if payment.status is not PaymentStatus.PROCESSING:
                return True  # canceled or settled meanwhile: the held charge never completes
            failure, decision = self.attempts.awaits_authentication(attempt, outcome)
            with contextlib.suppress(Conflict):
                await self.recorder.record(payment, attempt, outcome, failure, decision)
            return True
        if payment.status is not PaymentStatus.PROCESSING:
            attempt.transition(AttemptStatus.FAILED)
            attempt.reason = f"status query: {queried.raw_code}; the payment is {payment.status}"
            attempt.finished_at = self.clock.now()
            await self.store.run(lambda conn: repo.update_attempt(conn, attempt))
            return True
        controls = await self._controls(payment)
        run = self._worker_run(payment, attempts, attempt, controls)
        with contextlib.suppress(Conflict):  # canceled meanwhile: nothing more to call
            await self.attempts.drive(payment, run, outcome, status_known=True)
        return True
