"""Creating a payment: its first transaction, under the one-payment-per-order rule.

A payment is inserted only if its order lets it: no other payment of the order in
flight or paid, unless the shop asked for split payments. The check runs under a lock
on the order (PostgreSQL), and the database's partial unique index is the backstop: an
insert it refuses gets the same 409 as the check. The payment is linked to the
Idempotency-Key it is created under in the same transaction, with its first pending
attempt (written before the provider is called) and its events. What may stop it
before any call (risk control's reads and decision, a pause or hold by ops) is decided
inside that same transaction, so a payment costs no transaction of its own for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from paymend.domain.errors import Conflict, OrderAlreadyPaid, OrderPaymentInProgress
from paymend.domain.events import EventType
from paymend.domain.payment import ORDER_PAID, Attempt, Payment, PaymentStatus
from paymend.engine.events import emit, event_row
from paymend.engine.ids import IdFactory
from paymend.engine.liveness import Owner
from paymend.observability import PAYMENTS, get_logger
from paymend.store import idempotency, jobs, outbox
from paymend.store import payments as repo
from paymend.store.database import Connection, Store
from paymend.store.deferred import deferring
from paymend.store.idempotency import Claim, NewKey
from paymend.store.jobs import JobKind
from paymend.store.pii import Vault

log = get_logger("paymend.engine")


@dataclass(frozen=True, slots=True)
class Stop:
    """A payment stopped before any provider call: refused with `code` (FAILED; risk
    control's block, a paused bank under the naive policy), held for review (HELD), sent
    to 3-D Secure first (REQUIRES_ACTION; engine/risk_challenge.py continues it), or left
    `processing` to wait out a pause (PROCESSING; a `start_payment` job looks again after
    `look_after_s`: engine/waiting.py). `why` is for ops, and on the event."""

    status: PaymentStatus
    why: str
    code: str | None = None
    look_after_s: float = 0.0


# what the first transaction decides once the order is the payment's: None, call the
# provider; it may read (risk control's counters and history) but writes nothing
Decide = Callable[[Connection], Stop | None]
# another write of the payment's first transaction: its risk decision (engine/risk_gate.py)
Also = Callable[[Connection], None] | None
_STOP_EVENTS = {
    PaymentStatus.FAILED: EventType.PAYMENT_FAILED,
    PaymentStatus.HELD: EventType.PAYMENT_HELD,
    PaymentStatus.REQUIRES_ACTION: EventType.PAYMENT_REQUIRES_ACTION,
    PaymentStatus.PROCESSING: EventType.PAYMENT_PROCESSING,  # waits (not a webhook event)
}


class Creation:
    """Stores new payments: with their first attempt, or refused or held before a call."""

    def __init__(self, store: Store, ids: IdFactory, pii: Vault, owner: Owner) -> None:
        self.store = store
        self.ids = ids
        self.pii = pii  # seals the customer's contact details; without a key none are kept
        self.owner = owner  # the instance about to call the first attempt

    async def first(
        self,
        payment: Payment,
        attempt: Attempt,
        now: datetime,
        claim: Claim | NewKey | None,
        decide: Decide | None = None,
        also: Also = None,
    ) -> Stop | None:
        """Store a new payment in one transaction: with its first attempt, pending (the
        provider is called only once this committed), unless `decide` stops it there;
        then without one, in the status the Stop names. Returns the Stop (None: call)."""
        status = payment.status
        stopped: Stop | None = None

        def create(conn: Connection) -> None:
            nonlocal stopped
            # the transaction may run twice (a busy SQLite, an order index that refused):
            # each run starts from the payment as it came
            payment.status = status
            payment.failure_code = payment.failure_message = None
            self._take_order(conn, payment, claim)
            # the new rows, after the reads: on PostgreSQL one statement (store/prepared.py)
            with deferring(conn):
                stopped = decide(conn) if decide is not None else None
                if stopped is None:
                    repo.insert_payment(conn, payment, now, self.pii)
                    repo.insert_attempt(conn, attempt, self.owner.id)
                    emit(conn, self.ids.new("evt"), payment, EventType.PAYMENT_CREATED, now)
                    if also is not None:
                        also(conn)
            if stopped is not None:
                self._stopped(conn, payment, stopped, now)
                if also is not None:
                    also(conn)

        await self._create(payment, create)
        if stopped is not None:
            PAYMENTS.labels(payment.status.value, "none").inc()
            if stopped.status is PaymentStatus.HELD:
                log.warning("payment_held", payment_id=payment.id, why=stopped.why)
            elif stopped.status is PaymentStatus.PROCESSING:
                log.info("payment_waits", payment_id=payment.id, why=stopped.why)
            elif stopped.status is PaymentStatus.REQUIRES_ACTION:
                log.info("payment_challenged", payment_id=payment.id, why=stopped.why)
        return stopped

    def _stopped(self, conn: Connection, payment: Payment, stop: Stop, now: datetime) -> None:
        """Insert a payment stopped before any provider call, with its events (and, for
        one that waits, its `start_payment` job)."""
        extra: dict[str, str] | None = None
        if stop.status is PaymentStatus.PROCESSING:  # it is already; its reason: waiting
            extra = {"reason": f"waiting before any call: {stop.why}"}
            run_at = now + timedelta(seconds=stop.look_after_s)
            jobs.enqueue(conn, self.ids.new("job"), JobKind.START_PAYMENT, payment.id, run_at, now)
        elif stop.status is PaymentStatus.FAILED:
            payment.failure_code = stop.code
            payment.failure_message = stop.why
        elif stop.status is PaymentStatus.HELD:
            extra = {"reason": stop.why}
        else:
            extra = {"reason": "authentication"}
        if payment.status is not stop.status:
            payment.transition(stop.status)
        repo.insert_payment(conn, payment, now, self.pii)
        created = event_row(self.ids.new("evt"), payment, EventType.PAYMENT_CREATED, now)
        decided = event_row(
            self.ids.new("evt"), payment, _STOP_EVENTS[stop.status], now, extra=extra
        )
        outbox.add_rows(conn, [created, decided])

    def _take_order(self, conn: Connection, payment: Payment, claim: Claim | NewKey | None) -> None:
        """Link the Idempotency-Key to the payment and check that its order lets it be made
        (one payment per order, unless split), in the caller's transaction. The key comes
        first: a replay is answered by its key, not refused by the order its first request
        took."""
        idempotency.link(conn, claim, "payment", payment.id)
        repo.lock_order(conn, payment.merchant_id, payment.order_id)
        holder = repo.holding_order(
            conn, payment.merchant_id, payment.order_id, split=payment.split
        )
        if holder is not None:
            raise _order_taken(payment.order_id, holder)

    async def _create(self, payment: Payment, write: Callable[[Connection], None]) -> None:
        """Run the transaction that creates `payment`. The database's one-payment-per-order
        index backs the check in `_take_order`: an insert it refuses gets the same 409."""
        try:
            await self.store.run(repo.guarding_order(write))
        except repo.OrderIndexRefused:
            holder = await self.store.run(
                lambda conn: repo.holding_order(
                    conn, payment.merchant_id, payment.order_id, split=payment.split
                )
            )
            if holder is None:  # the other payment failed meanwhile: the order is free
                await self.store.run(write)
                return
            raise _order_taken(payment.order_id, holder) from None


def _order_taken(order_id: str, holder: Payment) -> Conflict:
    if holder.status in ORDER_PAID:
        return OrderAlreadyPaid(order_id, holder.id)
    return OrderPaymentInProgress(order_id, holder.id)
