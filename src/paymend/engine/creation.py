"""Creating a payment: its first transaction, under the one-payment-per-order rule.

A payment is inserted only if its order lets it: no other payment of the order in
flight or paid, unless the shop asked for split payments. The check runs under a lock
on the order (PostgreSQL), and the database's partial unique index is the backstop: an
insert it refuses gets the same 409 as the check. The payment is linked to the
Idempotency-Key it is created under in the same transaction, with its first pending
attempt (written before the provider is called) and its events.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from paymend.domain.errors import Conflict, OrderAlreadyPaid, OrderPaymentInProgress
from paymend.domain.events import EventType
from paymend.domain.payment import ORDER_PAID, Attempt, Payment, PaymentStatus
from paymend.engine.events import emit, event_row
from paymend.engine.ids import IdFactory
from paymend.engine.liveness import Owner
from paymend.observability import PAYMENTS, get_logger
from paymend.store import idempotency, outbox
from paymend.store import payments as repo
from paymend.store.database import Connection, Store
from paymend.store.idempotency import Claim, NewKey
from paymend.store.pii import Vault

log = get_logger("paymend.engine")
# another write of the payment's first transaction: its risk decision (engine/risk_gate.py)
Also = Callable[[Connection], None] | None


class Creation:
    """Stores new payments: with their first attempt, or refused or held by ops."""

    def __init__(self, store: Store, ids: IdFactory, pii: Vault, owner: Owner) -> None:
        self.store = store
        self.ids = ids
        self.pii = pii  # seals the customer's contact details; without a key none are kept
        self.owner = owner  # the instance about to call the first attempt

    async def with_attempt(
        self,
        payment: Payment,
        attempt: Attempt,
        now: datetime,
        claim: Claim | NewKey | None,
        also: Also = None,
    ) -> None:
        """Store a new payment with its first attempt, pending: the provider is called
        only once this committed."""

        def create(conn: Connection) -> None:
            self._insert_payment(conn, payment, now, claim)
            repo.insert_attempt(conn, attempt, self.owner.id)
            emit(conn, self.ids.new("evt"), payment, EventType.PAYMENT_CREATED, now)
            if also is not None:
                also(conn)

        await self._create(payment, create)

    def _insert_payment(
        self, conn: Connection, payment: Payment, now: datetime, claim: Claim | NewKey | None
    ) -> None:
        """Insert a new payment if its order lets it (one payment per order, unless split),
        linked to the Idempotency-Key it is created under, in the caller's transaction.
        The key comes first: a replay is answered by its key, not refused by the order
        its first request took."""
        idempotency.link(conn, claim, "payment", payment.id)
        repo.lock_order(conn, payment.merchant_id, payment.order_id)
        holder = repo.holding_order(
            conn, payment.merchant_id, payment.order_id, split=payment.split
        )
        if holder is not None:
            raise _order_taken(payment.order_id, holder)
        repo.insert_payment(conn, payment, now, self.pii)

    async def _create(self, payment: Payment, write: Callable[[Connection], None]) -> None:
        """Run the transaction that creates `payment`. The database's one-payment-per-order
        index backs the check in `_insert_payment`: an insert it refuses gets the same 409."""
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

    async def refuse_paused(
        self,
        payment: Payment,
        why: str,
        now: datetime,
        claim: Claim | NewKey | None,
        also: Also = None,
    ) -> None:
        """The customer's bank or region is paused: no provider is called, and the
        customer is told the bank is unavailable and to use another method."""
        await self.refuse(payment, "issuer_unavailable", why, now, claim, also)

    async def refuse(
        self,
        payment: Payment,
        code: str,
        why: str,
        now: datetime,
        claim: Claim | NewKey | None,
        also: Also = None,
    ) -> None:
        """Failed with `code` before any provider call (risk control's block,
        engine/risk_gate.py, or a pause); customers read the catalogue's message for it."""
        payment.failure_code = code
        payment.failure_message = why
        payment.transition(PaymentStatus.FAILED)
        await self._decided_without_call(payment, now, EventType.PAYMENT_FAILED, {}, claim, also)

    async def challenge(
        self,
        payment: Payment,
        why: str,
        now: datetime,
        claim: Claim | NewKey | None,
        also: Also = None,
    ) -> None:
        """Risk control asks for 3-D Secure first: the payment waits for the customer,
        no provider is called until POST …/confirm (engine/risk_challenge.py)."""
        payment.transition(PaymentStatus.REQUIRES_ACTION)
        await self._decided_without_call(
            payment,
            now,
            EventType.PAYMENT_REQUIRES_ACTION,
            {"reason": "authentication"},
            claim,
            also,
        )
        log.info("payment_challenged", payment_id=payment.id, why=why)

    async def hold(
        self,
        payment: Payment,
        why: str,
        now: datetime,
        claim: Claim | NewKey | None,
        also: Also = None,
    ) -> None:
        """A playbook or an operator holds this scope's large payments: nothing is called
        until ops release it (engine/review.py); the shop learns by `payment.held`."""
        payment.transition(PaymentStatus.HELD)
        await self._decided_without_call(
            payment, now, EventType.PAYMENT_HELD, {"reason": why}, claim, also
        )
        log.warning("payment_held", payment_id=payment.id, why=why)

    async def _decided_without_call(
        self,
        payment: Payment,
        now: datetime,
        event: EventType,
        extra: dict[str, str],
        claim: Claim | NewKey | None,
        also: Also = None,
    ) -> None:
        """Store a payment the controls settled before any provider call, with its events."""

        def write(conn: Connection) -> None:
            self._insert_payment(conn, payment, now, claim)
            created = event_row(self.ids.new("evt"), payment, EventType.PAYMENT_CREATED, now)
            decided = event_row(self.ids.new("evt"), payment, event, now, extra=extra or None)
            outbox.add_rows(conn, [created, decided])
            if also is not None:
                also(conn)

        await self._create(payment, write)
        PAYMENTS.labels(payment.status.value, "none").inc()


def _order_taken(order_id: str, holder: Payment) -> Conflict:
    if holder.status in ORDER_PAID:
        return OrderAlreadyPaid(order_id, holder.id)
    return OrderPaymentInProgress(order_id, holder.id)
