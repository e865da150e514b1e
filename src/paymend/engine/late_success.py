"""Late successes: a charge the provider made after paymend stopped counting on it.

A status query (or the settlement report) finds that an attempt charged after all. If
its payment still waits for an outcome, the payment succeeds with it. If the payment
settled another way meanwhile (failed, canceled, or charged by another attempt), the
charge is a duplicate: it is marked reversed, refunded at once (engine/refunds.py), and
ops are alerted, in one transaction. Never charge twice, and never keep a second charge.
"""

from __future__ import annotations

from paymend.domain.clock import Clock
from paymend.domain.events import EventType
from paymend.domain.payment import Attempt, AttemptStatus, PaymentStatus
from paymend.engine.calls import CallOutcome
from paymend.engine.events import emit
from paymend.engine.ids import IdFactory
from paymend.engine.ops_events import OpsEventKind, raise_event
from paymend.engine.refunds import RefundService
from paymend.engine.stale import retry_stale
from paymend.observability import get_logger
from paymend.store import payments as repo
from paymend.store.database import Connection, Store

log = get_logger("paymend.engine")


class LateSuccess:
    """Settles a charge found after the fact: counts it, or reverses and refunds it."""

    def __init__(self, store: Store, clock: Clock, ids: IdFactory, refunds: RefundService) -> None:
        self.store = store
        self.clock = clock
        self.ids = ids
        self.refunds = refunds

    async def settle(self, attempt: Attempt, outcome: CallOutcome) -> None:
        """The provider charged. The payment succeeds, unless it settled another way
        meanwhile: then this charge is a duplicate and is refunded at once."""
        now = self.clock.now()

        def write(conn: Connection) -> None:
            payment = repo.get_payment(conn, attempt.payment_id)
            current = repo.get_attempt(conn, attempt.id)
            if current is None or current.status not in (
                AttemptStatus.UNKNOWN,
                AttemptStatus.PENDING,
                AttemptStatus.FAILED,  # reconciliation: charged after being recorded failed
                AttemptStatus.REQUIRES_ACTION,  # a notification: the customer paid (QR, page)
            ):
                return
            others = [
                a
                for a in repo.list_attempts(conn, payment.id)
                if a.id != current.id and a.status is AttemptStatus.SUCCEEDED
            ]
            current.provider_reference = outcome.reference
            current.finished_at = now
            if (
                payment.status in (PaymentStatus.PROCESSING, PaymentStatus.REQUIRES_ACTION)
                and not others
            ):
                current.transition(AttemptStatus.SUCCEEDED)
                current.reason = f"status query: {outcome.query_code}; the money had moved"
                repo.update_attempt(conn, current)
                for waiting in repo.list_attempts(conn, payment.id):
                    if waiting.status is AttemptStatus.PENDING and waiting.id != current.id:
                        waiting.transition(AttemptStatus.FAILED)
                        waiting.reason = f"not called: attempt {current.id} had succeeded"
                        repo.update_attempt(conn, waiting)
                if payment.status is PaymentStatus.REQUIRES_ACTION:
                    payment.transition(PaymentStatus.PROCESSING)
                payment.transition(PaymentStatus.SUCCEEDED)
                payment.failure_code = payment.failure_message = None
                repo.update_payment(conn, payment, now)
                emit(
                    conn,
                    self.ids.new("evt"),
                    payment,
                    EventType.PAYMENT_SUCCEEDED,
                    now,
                    attempt=current,
                )
                return
            current.transition(AttemptStatus.REVERSED)
            current.reason = (
                f"status query: {outcome.query_code}; charged after the payment was "
                f"{payment.status}: refunded automatically"
            )
            repo.update_attempt(conn, current)
            refund = self.refunds.refund_duplicate(conn, payment, current, now)
            emit(
                conn,
                self.ids.new("evt"),
                payment,
                EventType.DUPLICATE_CHARGE,
                now,
                attempt=current,
                refund=refund,
            )
            log.warning(
                "ops_alert",
                payment_id=payment.id,
                attempt_id=current.id,
                reason="a second charge for one payment: refunded automatically",
            )
            raise_event(
                conn,
                now,
                OpsEventKind.DUPLICATE_CHARGE,
                current.id,
                f"a second charge for one payment, refunded automatically: {payment.id}",
                scope={"channel": current.provider},
                payment_id=payment.id,
                attempt_id=current.id,
                refund_id=refund.id,
            )

        await retry_stale(self.store, write)

    async def charged_after_all(self, attempt_id: str, reference: str) -> None:
        """Reconciliation found a charge the store does not count: settle it like a late
        success (a duplicate when the payment settled otherwise: refunded at once)."""
        attempt = await self.store.run(lambda conn: repo.get_attempt(conn, attempt_id))
        if attempt is None:
            return
        outcome = CallOutcome(
            AttemptStatus.SUCCEEDED,
            attempt.raw_code,
            attempt.raw_message,
            reference,
            attempt.latency_ms or 0,
            True,
            query_code="SETTLEMENT_REPORT",
        )
        await self.settle(attempt, outcome)
