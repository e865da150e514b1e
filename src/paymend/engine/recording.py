"""Recording a provider call: the attempt's outcome, the payment's new status, the next
attempt (written before it is called), the jobs the worker now owes and the outbox
events, committed in one transaction.

If the payment moved on meanwhile (a cancel, a late success elsewhere), the status
change is refused by the payment's version check (or seen here) and raises Conflict:
the call's audit trail is still kept, and a charge that landed anyway is handed to
engine/late_success.py to be refunded.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from paymend.domain.clock import Clock
from paymend.domain.errors import Conflict
from paymend.domain.events import EventType
from paymend.domain.failure import Action, Decision, Failure
from paymend.domain.payment import Attempt, AttemptStatus, Payment, PaymentStatus
from paymend.engine.calls import CallOutcome
from paymend.engine.events import STATUS_EVENTS, event_row
from paymend.engine.ids import IdFactory
from paymend.engine.late_success import LateSuccess
from paymend.engine.liveness import Owner
from paymend.health.book import Health
from paymend.health.keys import channel_key
from paymend.observability import PAYMENTS, children, get_logger
from paymend.store import jobs, outbox
from paymend.store import payments as repo
from paymend.store.database import Connection, Store
from paymend.store.deferred import deferring

log = get_logger("paymend.engine")
_PAYMENTS = children(PAYMENTS)  # every payment that reaches a status
SETTLE_FIRST_AFTER = timedelta(seconds=2)  # first worker query of an unknown outcome


class Recorder:
    """Commits what a provider call did, in one transaction with all it implies."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        ids: IdFactory,
        health: Health,
        late: LateSuccess,
        owner: Owner,
    ) -> None:
        self.store = store
        self.clock = clock
        self.ids = ids
        self.health = health  # an ops alert flags the channel (the playbooks' signal)
        self.late = late
        self.owner = owner  # the instance that will call the next attempt
        # told of every payment that ends failed here, in the checkout or later in the
        # worker (risk control's Redis counters: engine/risk_gate.py)
        self.on_failed: Callable[[Payment], Awaitable[None]] | None = None

    async def record(
        self,
        payment: Payment,
        attempt: Attempt,
        outcome: CallOutcome,
        failure: Failure | None,
        decision: Decision | None,
        *,
        following: Attempt | None = None,
        inline: bool = False,
        after_s: float = 0.0,
        then: Callable[[Connection], None] | None = None,
    ) -> None:
        """Commit the attempt's outcome, the payment's new status, the next attempt
        (`following`, written before it is called; `inline`: it runs in this run, else a
        job runs it in `after_s`), the jobs the worker now owes and the events, in one
        transaction; `then` writes what the run's end adds (the Idempotency-Key's
        answer) in the same one."""
        now = self.clock.now()
        attempt.transition(outcome.status)
        attempt.raw_code = outcome.raw_code
        attempt.raw_message = outcome.raw_message
        attempt.provider_reference = outcome.reference
        attempt.latency_ms = outcome.latency_ms
        if outcome.next_action is not None:
            attempt.next_action = dict(outcome.next_action)
        # an unknown outcome's call ended too (timed out, or lost its answer): when, so a
        # status query that finds the charge can correct what health counted then
        unknown = outcome.status is AttemptStatus.UNKNOWN
        attempt.finished_at = outcome.ended_at if unknown else now
        if failure is not None:
            attempt.unified_code = failure.code
        if decision is not None:
            attempt.decision = decision.action.value
            attempt.reason = decision.reason
            if outcome.query_code:
                attempt.reason = f"status query: {outcome.query_code}; {decision.reason}"
            if decision.alert_ops:
                code = failure.code if failure else "alert"
                self.health.flag(channel_key(attempt.provider), self.clock.now().timestamp(), code)
                log.warning(
                    "ops_alert",
                    payment_id=payment.id,
                    attempt_id=attempt.id,
                    provider=attempt.provider,
                    code=failure.code if failure else None,
                    raw_code=outcome.raw_code,
                    reason=decision.reason,
                )
        target = _payment_target(attempt, decision, following)
        if target in (PaymentStatus.FAILED, PaymentStatus.REQUIRES_ACTION):
            payment.failure_code = failure.code if failure else None
            payment.failure_message = outcome.raw_message
        elif target is PaymentStatus.SUCCEEDED:  # e.g. after 3-D Secure: no failure is left
            payment.failure_code = payment.failure_message = None
        if following is not None:
            following.created_at = now

        def write(conn: Connection) -> None:
            # canceled meanwhile? A status change below is refused by the payment's version
            # check (StaleWrite); without one, look: keep the record, call nothing more
            if target is None:
                current = repo.get_payment(conn, payment.id)
                if current.status is not payment.status:
                    raise Conflict("payment_changed", f"payment {payment.id} is {current.status}")
            self._settle_later(conn, attempt, now)
            if following is not None:
                repo.insert_attempt(conn, following, self.owner.id)
                if not inline:
                    jobs.enqueue(
                        conn,
                        self.ids.new("job"),
                        jobs.JobKind.RUN_ATTEMPT,
                        following.id,
                        now + timedelta(seconds=after_s),
                        now,
                    )
            # the outcome's rows, none reading another's: on PostgreSQL one statement
            # (store/prepared.py), whose version check raises StaleWrite as it ends
            with deferring(conn):
                repo.update_attempt(conn, attempt)
                # the call's event and the payment's, as each stands when it happens, in
                # one insert at the end
                events = [
                    event_row(
                        self.ids.new("evt"),
                        payment,
                        EventType.ATTEMPT_FINISHED,
                        now,
                        attempt=attempt,
                    )
                ]
                if target is not None:
                    payment.transition(target)
                    repo.update_payment(conn, payment, now)
                    events.append(
                        event_row(
                            self.ids.new("evt"),
                            payment,
                            STATUS_EVENTS[target],
                            now,
                            attempt=attempt,
                        )
                    )
                outbox.add_rows(conn, events)
                if then is not None:
                    then(conn)

        try:
            await self.store.run(write)
        except Conflict:
            if attempt.status is AttemptStatus.SUCCEEDED:
                # charged after the payment was canceled: a late success, sent back
                await self.late.settle(attempt, outcome)
            else:
                await self._record_only(attempt)
            raise
        if target is not None:
            _PAYMENTS(payment.status.value, attempt.provider).inc()
        if target is PaymentStatus.FAILED and self.on_failed is not None:
            await self.on_failed(payment)

    async def _record_only(self, attempt: Attempt) -> None:
        """Keep the audit trail of a call whose payment moved on without it."""

        now = self.clock.now()

        def write(conn: Connection) -> None:
            repo.update_attempt(conn, attempt)
            self._settle_later(conn, attempt, now)

        await self.store.run(write)

    def _settle_later(self, conn: Connection, attempt: Attempt, now: datetime) -> None:
        """An unknown outcome owes a status query: the job is written with the outcome."""
        if attempt.status is AttemptStatus.UNKNOWN:
            jobs.enqueue(
                conn,
                self.ids.new("job"),
                jobs.JobKind.SETTLE_ATTEMPT,
                attempt.id,
                now + SETTLE_FIRST_AFTER,
                now,
            )


def _payment_target(
    attempt: Attempt, decision: Decision | None, following: Attempt | None
) -> PaymentStatus | None:
    if attempt.status is AttemptStatus.SUCCEEDED:
        return PaymentStatus.SUCCEEDED
    if following is not None or attempt.status is AttemptStatus.UNKNOWN:
        return None  # another attempt follows, or the worker settles it
    if decision is not None and decision.action is Action.AUTHENTICATE:
        return PaymentStatus.REQUIRES_ACTION
    if attempt.status is AttemptStatus.REQUIRES_ACTION:
        return PaymentStatus.REQUIRES_ACTION
    return PaymentStatus.FAILED
