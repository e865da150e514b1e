"""PaymentService: pay, get, refund, and settling attempts whose outcome was unknown.

The order of work is the safety argument: the payment and a pending attempt are committed
*before* the provider is called, and the outcome, the payment's new status and the outbox
events are committed together afterwards. A crash anywhere leaves rows the worker can
finish; the attempt id is the provider's idempotency key, so a resend never charges
twice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.engine import Connection

from paymend.domain.clock import Clock
from paymend.domain.errors import InvalidInput, PaymendError, PaymentInFlight, Unavailable
from paymend.domain.events import EventType
from paymend.domain.ids import AttemptId, PaymentId, RefundId
from paymend.domain.masking import mask_customer, mask_token
from paymend.domain.money import Money
from paymend.domain.payment import (
    Attempt,
    AttemptStatus,
    Payment,
    PaymentStatus,
    Refund,
    RefundStatus,
)
from paymend.engine.calls import CallOutcome, call
from paymend.engine.commands import PayCommand, RefundCommand
from paymend.engine.ids import IdFactory
from paymend.observability import ATTEMPT_LATENCY, ATTEMPTS, PAYMENTS, get_logger
from paymend.providers.base import (
    ChargeRequest,
    Provider,
    ProviderOutcome,
    QueryRequest,
    RefundRequest,
)
from paymend.routing.priority import rank
from paymend.store import outbox, refunds
from paymend.store import payments as repo
from paymend.store.database import Store
from paymend.store.payments import StaleWrite

T = TypeVar("T")
log = get_logger("paymend.engine")

_STATUS_EVENTS = {
    PaymentStatus.SUCCEEDED: EventType.PAYMENT_SUCCEEDED,
    PaymentStatus.FAILED: EventType.PAYMENT_FAILED,
    PaymentStatus.REQUIRES_ACTION: EventType.PAYMENT_REQUIRES_ACTION,
    PaymentStatus.CANCELED: EventType.PAYMENT_CANCELED,
    PaymentStatus.PROCESSING: EventType.PAYMENT_PROCESSING,
    PaymentStatus.REFUNDED: EventType.PAYMENT_REFUNDED,
    PaymentStatus.PARTIALLY_REFUNDED: EventType.PAYMENT_REFUNDED,
}


@dataclass(slots=True)
class PaymentView:
    """A payment with its attempt timeline and refunds, as read in one transaction."""

    payment: Payment
    attempts: list[Attempt] = field(default_factory=list)
    refunds: list[Refund] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class EngineSettings:
    provider_timeout_s: float = 10.0
    routing: tuple[str, ...] = ()


class PaymentService:
    def __init__(
        self,
        store: Store,
        providers: Mapping[str, Provider],
        clock: Clock,
        settings: EngineSettings,
        ids: IdFactory | None = None,
    ) -> None:
        self.store = store
        self.providers = providers
        self.clock = clock
        self.settings = settings
        self.ids = ids or IdFactory()

    # -- pay ----------------------------------------------------------------------------

    def methods(self) -> set[str]:
        return {m for p in self.providers.values() for m in p.capabilities.methods}

    async def pay(self, cmd: PayCommand) -> PaymentView:
        route = rank(
            self.settings.routing or tuple(self.providers),
            {n: p.capabilities for n, p in self.providers.items()},
            method=cmd.method,
            currency=cmd.amount.currency,
            region=cmd.region,
        )
        if not route.channels:
            raise InvalidInput(
                "payment_method_unavailable",
                f"no configured channel accepts {cmd.method} in {cmd.amount.currency}"
                + (f" for region {cmd.region}" if cmd.region else ""),
                param="method",
            )
        now = self.clock.now()
        payment = Payment(
            id=PaymentId(self.ids.new("pay")),
            merchant_id=cmd.merchant_id,
            order_id=cmd.order_id,
            amount=cmd.amount,
            method=cmd.method,
            bank=cmd.bank,
            region=cmd.region,
            customer=cmd.customer,
            metadata=dict(cmd.metadata),
            token=cmd.token,
            trace_id=cmd.trace_id,
        )
        payment.transition(PaymentStatus.PROCESSING)
        attempt = self._new_attempt(payment, 1, route.channels[0], f"route: {route.reason}")
        attempt.created_at = now

        def create(conn: Connection) -> None:
            repo.insert_payment(conn, payment, now)
            repo.insert_attempt(conn, attempt)
            self._event(conn, payment, EventType.PAYMENT_CREATED, now)

        await self.store.run(create)
        attempts = [attempt]
        # The loop is where retries and failover slot in: the decision after each call
        # says whether another attempt follows. Today every outcome ends the payment
        # (or leaves it to the worker when the outcome is unknown).
        try:
            outcome = await self._authorize(payment, attempt)
            await self._record(payment, attempt, outcome)
        except PaymendError as exc:
            log.warning("payment_left_in_flight", payment_id=payment.id, code=exc.code)
            raise PaymentInFlight(payment.id) from exc
        return PaymentView(payment, attempts, [])

    def _new_attempt(self, payment: Payment, seq: int, channel: str, reason: str) -> Attempt:
        return Attempt(
            id=AttemptId(self.ids.new("att")),
            payment_id=payment.id,
            seq=seq,
            provider=channel,
            trace_id=payment.trace_id,
            reason=reason,
            request={
                "amount": payment.amount.minor,
                "currency": payment.amount.currency,
                "method": payment.method,
                "bank": payment.bank,
                "region": payment.region,
                "token": mask_token(payment.token),
                "customer": mask_customer(payment.customer.as_dict()),
            },
        )

    async def _authorize(self, payment: Payment, attempt: Attempt) -> CallOutcome:
        provider = self.providers[attempt.provider]
        request = ChargeRequest(
            idempotency_key=attempt.idempotency_key,
            payment_id=payment.id,
            amount=payment.amount,
            method=payment.method,
            token=payment.token,
            bank=payment.bank,
            region=payment.region,
            metadata=payment.metadata,
        )
        outcome = await call(
            self.clock, self.settings.provider_timeout_s, provider.authorize(request)
        )
        self._observe(attempt, outcome, "authorize")
        return outcome

    async def _record(self, payment: Payment, attempt: Attempt, outcome: CallOutcome) -> None:
        """Commit the attempt's outcome, the payment's new status and its events at once."""
        now = self.clock.now()
        attempt.transition(outcome.status)
        attempt.raw_code = outcome.raw_code
        attempt.raw_message = outcome.raw_message
        attempt.provider_reference = outcome.reference
        attempt.latency_ms = outcome.latency_ms
        attempt.finished_at = now
        target = {
            AttemptStatus.SUCCEEDED: PaymentStatus.SUCCEEDED,
            AttemptStatus.FAILED: PaymentStatus.FAILED,
            AttemptStatus.REQUIRES_ACTION: PaymentStatus.REQUIRES_ACTION,
        }.get(attempt.status)
        if attempt.status is AttemptStatus.UNKNOWN:
            attempt.decision = "query_status"
            attempt.reason = (
                "outcome unknown: the worker will ask the provider before anything else"
            )
        elif attempt.status is AttemptStatus.FAILED:
            attempt.decision = "give_up"
        if attempt.status is AttemptStatus.FAILED:
            payment.failure_code = outcome.raw_code
            payment.failure_message = outcome.raw_message

        def write(conn: Connection) -> None:
            repo.update_attempt(conn, attempt)
            self._event(conn, payment, EventType.ATTEMPT_FINISHED, now, attempt=attempt)
            if target is not None:
                payment.transition(target)
                repo.update_payment(conn, payment, now)
                self._event(conn, payment, _STATUS_EVENTS[target], now, attempt=attempt)

        await self.store.run(write)
        if target is not None:
            PAYMENTS.labels(payment.status.value, attempt.provider).inc()

    def _observe(self, attempt: Attempt, outcome: CallOutcome, operation: str) -> None:
        ATTEMPTS.labels(attempt.provider, outcome.status.value, outcome.raw_code or "").inc()
        ATTEMPT_LATENCY.labels(attempt.provider).observe(outcome.latency_ms / 1000)
        log.info(
            "provider_call",
            operation=operation,
            payment_id=attempt.payment_id,
            attempt_id=attempt.id,
            provider=attempt.provider,
            outcome=outcome.status.value,
            raw_code=outcome.raw_code,
            raw_message=outcome.raw_message,
            latency_ms=outcome.latency_ms,
            trace_id=attempt.trace_id,
        )

    def _event(
        self,
        conn: Connection,
        payment: Payment,
        type: EventType,
        now: Any,
        attempt: Attempt | None = None,
        refund: Refund | None = None,
    ) -> None:
        payload: dict[str, Any] = {
            "payment_id": payment.id,
            "order_id": payment.order_id,
            "status": payment.status.value,
            "amount": payment.amount.minor,
            "currency": payment.amount.currency,
            "amount_refunded": payment.amount_refunded,
        }
        if attempt is not None:
            payload["attempt"] = {
                "id": attempt.id,
                "provider": attempt.provider,
                "status": attempt.status.value,
                "raw_code": attempt.raw_code,
            }
        if refund is not None:
            payload["refund"] = {
                "id": refund.id,
                "amount": refund.amount.minor,
                "status": refund.status.value,
            }
        outbox.add(conn, self.ids.new("evt"), payment.merchant_id, type, payment.id, payload, now)

    # -- read ---------------------------------------------------------------------------

    async def get(self, payment_id: str, merchant_id: str | None = None) -> PaymentView:
        def read(conn: Connection) -> PaymentView:
            p = repo.get_payment(conn, payment_id, merchant_id)
            return PaymentView(p, repo.list_attempts(conn, p.id), refunds.for_payment(conn, p.id))

        return await self.store.run(read)

    async def find_by_order(self, merchant_id: str, order_id: str) -> list[PaymentView]:
        def read(conn: Connection) -> list[PaymentView]:
            return [
                PaymentView(p, repo.list_attempts(conn, p.id), refunds.for_payment(conn, p.id))
                for p in repo.find_by_order(conn, merchant_id, order_id)
            ]

        return await self.store.run(read)

    # -- unknown outcomes ---------------------------------------------------------------

    async def resolve_unknown(self, attempt: Attempt) -> AttemptStatus:
        """Ask the provider what became of an attempt whose outcome is unknown.

        Also settles attempts left `pending` by a crash between the call and its record.
        """
        provider = self.providers.get(attempt.provider)
        if provider is None:
            return attempt.status
        outcome = await call(
            self.clock,
            self.settings.provider_timeout_s,
            provider.query(QueryRequest(attempt.idempotency_key, attempt.payment_id)),
        )
        self._observe(attempt, outcome, "query")
        if outcome.status not in (AttemptStatus.SUCCEEDED, AttemptStatus.FAILED):
            return AttemptStatus.UNKNOWN  # still unknown: ask again later
        now = self.clock.now()

        def settle(conn: Connection) -> AttemptStatus:
            current = next(
                a for a in repo.list_attempts(conn, attempt.payment_id) if a.id == attempt.id
            )
            if current.status not in (AttemptStatus.UNKNOWN, AttemptStatus.PENDING):
                return current.status  # someone settled it meanwhile
            payment = repo.get_payment(conn, attempt.payment_id)
            settled = outcome.status
            current.transition(settled)
            current.provider_reference = outcome.reference or current.provider_reference
            current.reason = f"status query answered {outcome.raw_code}"
            current.finished_at = now
            repo.update_attempt(conn, current)
            if payment.status is PaymentStatus.PROCESSING:
                target = (
                    PaymentStatus.SUCCEEDED
                    if settled is AttemptStatus.SUCCEEDED
                    else PaymentStatus.FAILED
                )
                if target is PaymentStatus.FAILED:
                    payment.failure_code = current.raw_code
                    payment.failure_message = current.raw_message
                payment.transition(target)
                repo.update_payment(conn, payment, now)
                self._event(conn, payment, _STATUS_EVENTS[target], now, attempt=current)
            elif settled is AttemptStatus.SUCCEEDED:
                log.warning(
                    "late_success",
                    payment_id=payment.id,
                    attempt_id=current.id,
                    payment_status=payment.status.value,
                )
            return settled

        return await self._retry_stale(settle)

    # -- refunds ------------------------------------------------------------------------

    async def refund(self, cmd: RefundCommand) -> Refund:
        now = self.clock.now()

        def reserve(conn: Connection) -> tuple[Refund, str]:
            payment = repo.get_payment(conn, cmd.payment_id, cmd.merchant_id)
            charged = next(
                (
                    a
                    for a in repo.list_attempts(conn, payment.id)
                    if a.status is AttemptStatus.SUCCEEDED
                ),
                None,
            )
            amount = cmd.amount if cmd.amount is not None else payment.refundable
            payment.reserve_refund(amount)
            if charged is None or charged.provider_reference is None:  # pragma: no cover
                raise InvalidInput("payment_not_refundable", "no captured charge to refund")
            refund = Refund(
                id=RefundId(self.ids.new("re")),
                payment_id=payment.id,
                amount=Money(amount, payment.amount.currency),
                provider=charged.provider,
                reason=cmd.reason,
                created_at=now,
                updated_at=now,
            )
            refunds.insert(conn, refund)
            repo.update_payment(conn, payment, now)
            return refund, charged.provider_reference

        refund, reference = await self._retry_stale(reserve)
        return await self._send_refund(refund, reference)

    async def _send_refund(self, refund: Refund, charge_reference: str) -> Refund:
        provider = self.providers.get(refund.provider)
        if provider is None:
            raise Unavailable(
                "provider_unavailable", f"channel {refund.provider} is not configured"
            )
        try:
            result = await provider.refund(
                RefundRequest(refund.idempotency_key, charge_reference, refund.amount)
            )
        except Exception as exc:  # noqa: BLE001 - stays pending; the worker resends it
            log.warning("refund_call_failed", refund_id=refund.id, error=type(exc).__name__)
            return refund
        if result.outcome not in (ProviderOutcome.SUCCEEDED, ProviderOutcome.DECLINED):
            return refund  # an error: the worker resends under the same idempotency key
        now = self.clock.now()

        def settle(conn: Connection) -> Refund:
            current = refunds.get(conn, refund.id)
            if current.status is not RefundStatus.PENDING:
                return current
            payment = repo.get_payment(conn, current.payment_id)
            ok = result.outcome is ProviderOutcome.SUCCEEDED
            current.transition(RefundStatus.SUCCEEDED if ok else RefundStatus.FAILED)
            current.raw_code, current.raw_message = result.raw_code, result.raw_message
            current.provider_reference = result.reference
            current.updated_at = now
            refunds.update(conn, current)
            payment.settle_refund(current.amount.minor, succeeded=ok)
            repo.update_payment(conn, payment, now)
            kind = EventType.REFUND_SUCCEEDED if ok else EventType.REFUND_FAILED
            self._event(conn, payment, kind, now, refund=current)
            if ok:
                self._event(conn, payment, EventType.PAYMENT_REFUNDED, now, refund=current)
            return current

        return await self._retry_stale(settle)

    async def resend_refund(self, refund: Refund) -> Refund:
        def reference(conn: Connection) -> str | None:
            return next(
                (
                    a.provider_reference
                    for a in repo.list_attempts(conn, refund.payment_id)
                    if a.status is AttemptStatus.SUCCEEDED
                ),
                None,
            )

        ref = await self.store.run(reference)
        return refund if ref is None else await self._send_refund(refund, ref)

    async def _retry_stale(self, fn: Callable[[Connection], T], tries: int = 5) -> T:
        """Run `fn` again when a concurrent writer got to the payment first."""
        for _ in range(tries - 1):
            try:
                return await self.store.run(fn)
            except StaleWrite:
                continue
        return await self.store.run(fn)
