"""PaymentService: pay, get, refund, and settling attempts whose outcome was unknown.

The order of work is the safety argument: the payment and a pending attempt are committed
*before* the provider is called, and the outcome, the payment's new status and the outbox
events are committed together afterwards. A crash anywhere leaves rows the worker can
finish; the attempt id is the provider's idempotency key, so a resend never charges
twice.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy.engine import Connection

from paymend.domain.clock import Clock
from paymend.domain.errors import InvalidInput, PaymendError, PaymentInFlight, Unavailable
from paymend.domain.events import EventType
from paymend.domain.failure import Action, Decision, Failure
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
from paymend.failures.classify import Classifier, RawAnswer, default_classifier
from paymend.failures.policy import DecisionContext, PriorAttempt, decide
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
REPEAT_WINDOW = timedelta(hours=1)
CARD_HISTORY = timedelta(days=30)  # the card networks' reattempt window
MIN_CALL_S = 0.05  # no call starts with less time than this left before the deadline

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
    repeat_failures: int = 0  # same customer, same cause, within the hour before it


@dataclass(frozen=True, slots=True)
class EngineSettings:
    provider_timeout_s: float = 10.0
    routing: tuple[str, ...] = ()
    checkout_deadline_s: float = 10.0  # no new attempt starts after this in a checkout call
    max_attempts: int = 4  # provider calls for one payment inside one checkout call
    seed: int | None = None  # for the backoff jitter; None: unpredictable


class PaymentService:
    def __init__(
        self,
        store: Store,
        providers: Mapping[str, Provider],
        clock: Clock,
        settings: EngineSettings,
        ids: IdFactory | None = None,
        classifier: Classifier | None = None,
    ) -> None:
        self.store = store
        self.providers = providers
        self.clock = clock
        self.settings = settings
        self.ids = ids or IdFactory()
        self.classifier = classifier or default_classifier()
        self._rng = random.Random(settings.seed)  # noqa: S311 - jitter, not secrets

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

        def create_and_count(conn: Connection) -> int:
            create(conn)
            if payment.token is None:
                return 0
            return repo.card_tries_since(conn, payment.token, now - CARD_HISTORY)

        card_tries = await self.store.run(create_and_count)
        try:
            attempts = await self._drive(
                payment, attempt, route.channels, self.clock.monotonic(), card_tries
            )
        except PaymendError as exc:
            log.warning("payment_left_in_flight", payment_id=payment.id, code=exc.code)
            raise PaymentInFlight(payment.id) from exc
        repeats = 0
        if payment.failure_code is not None:
            repeats = await self.store.run(
                lambda conn: repo.recent_failures(conn, payment, REPEAT_WINDOW)
            )
        return PaymentView(payment, attempts, [], repeats)

    async def _drive(
        self,
        payment: Payment,
        attempt: Attempt,
        channels: Sequence[str],
        started: float,
        card_tries: int = 0,
    ) -> list[Attempt]:
        """Call, classify, decide, and follow the decision until the payment settles,
        needs the customer, or is left to the worker."""
        attempts = [attempt]
        while True:
            outcome = await self._authorize(payment, attempt, self._call_timeout(started))
            failure: Failure | None = None
            decision: Decision | None = None
            if outcome.status is not AttemptStatus.SUCCEEDED:
                failure = self._classify(attempt.provider, outcome)
                decision = decide(
                    failure,
                    self._context(attempt, attempts, channels, started, failure, card_tries),
                )
                if (
                    decision.action is Action.QUERY_STATUS
                    and self._remaining(started) >= MIN_CALL_S
                ):
                    outcome = await self._query_after(attempt, outcome, self._call_timeout(started))
                    if outcome.status is AttemptStatus.SUCCEEDED:
                        failure = decision = None
                    elif outcome.status is AttemptStatus.FAILED:
                        ctx = self._context(
                            attempt, attempts, channels, started, failure, card_tries
                        )
                        decision = decide(failure, replace(ctx, status_known=True))
                if (
                    decision is not None
                    and decision.action is Action.QUERY_STATUS
                    and outcome.status is AttemptStatus.FAILED
                ):
                    # an error answer that leaves the outcome uncertain: the worker asks
                    outcome = replace(outcome, status=AttemptStatus.UNKNOWN)
            following = self._follow(payment, attempt, attempts, decision, started)
            if decision is not None and decision.action is Action.REFRESH_CREDENTIALS:
                await self._refresh(attempt.provider)
            await self._record(payment, attempt, outcome, failure, decision, following)
            if following is None:
                return attempts
            if decision is not None and decision.after_s > 0:
                await self.clock.sleep(decision.after_s)
            attempts.append(following)
            attempt = following

    def _remaining(self, started: float) -> float:
        return self.settings.checkout_deadline_s - (self.clock.monotonic() - started)

    def _classify(self, channel: str, outcome: CallOutcome) -> Failure:
        provider = self.providers[channel]
        return self.classifier.classify(
            getattr(provider, "code_map", channel),
            RawAnswer(outcome.raw_code, outcome.raw_message),
        )

    def _context(
        self,
        attempt: Attempt,
        attempts: Sequence[Attempt],
        channels: Sequence[str],
        started: float,
        failure: Failure,
        card_tries: int,
    ) -> DecisionContext:
        tried = {a.provider for a in attempts}
        prior = [PriorAttempt(a.provider, a.unified_code) for a in attempts[:-1]]
        return DecisionContext(
            channel=attempt.provider,
            attempts=[*prior, PriorAttempt(attempt.provider, failure.code)],
            channels_left=[c for c in channels if c not in tried],
            card_reattempts_30d=card_tries + len(attempts) - 1,
            remaining_s=self._remaining(started),
            credentials_refreshed=any(
                a.provider == attempt.provider and a.decision == Action.REFRESH_CREDENTIALS.value
                for a in attempts[:-1]
            ),
            jitter=lambda cap: self._rng.uniform(0, cap),
        )

    def _follow(
        self,
        payment: Payment,
        attempt: Attempt,
        attempts: Sequence[Attempt],
        decision: Decision | None,
        started: float,
    ) -> Attempt | None:
        """The next attempt the decision calls for, if the checkout has room for it."""
        if decision is None or decision.action not in (
            Action.FAILOVER,
            Action.RETRY_LATER,
            Action.REFRESH_CREDENTIALS,
        ):
            return None
        if len(attempts) >= self.settings.max_attempts:
            return None
        if self._remaining(started) - decision.after_s < MIN_CALL_S:
            return None
        channel = decision.channel or attempt.provider
        return self._new_attempt(payment, attempt.seq + 1, channel, decision.reason)

    async def _refresh(self, channel: str) -> None:
        refresh = getattr(self.providers[channel], "refresh_credentials", None)
        if refresh is not None:
            await refresh()

    def _call_timeout(self, started: float) -> float:
        """A call may not outlive the checkout's deadline: past it, the outcome is
        unknown and the worker finishes the payment."""
        return max(MIN_CALL_S, min(self.settings.provider_timeout_s, self._remaining(started)))

    async def _query_after(
        self, attempt: Attempt, outcome: CallOutcome, timeout_s: float
    ) -> CallOutcome:
        """Ask the provider what became of the call; keep the original raw answer."""
        provider = self.providers[attempt.provider]
        queried = await call(
            self.clock,
            timeout_s,
            provider.query(QueryRequest(attempt.idempotency_key, attempt.payment_id)),
        )
        self._observe(attempt, queried, "query")
        if queried.status not in (AttemptStatus.SUCCEEDED, AttemptStatus.FAILED):
            return outcome
        return replace(
            outcome,
            status=queried.status,
            reference=queried.reference or outcome.reference,
            query_code=queried.raw_code,
        )

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

    async def _authorize(self, payment: Payment, attempt: Attempt, timeout_s: float) -> CallOutcome:
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
        outcome = await call(self.clock, timeout_s, provider.authorize(request))
        self._observe(attempt, outcome, "authorize")
        return outcome

    async def _record(
        self,
        payment: Payment,
        attempt: Attempt,
        outcome: CallOutcome,
        failure: Failure | None,
        decision: Decision | None,
        following: Attempt | None,
    ) -> None:
        """Commit the attempt's outcome, the payment's new status, the next attempt (if
        any: written before it is called) and the events, in one transaction."""
        now = self.clock.now()
        attempt.transition(outcome.status)
        attempt.raw_code = outcome.raw_code
        attempt.raw_message = outcome.raw_message
        attempt.provider_reference = outcome.reference
        attempt.latency_ms = outcome.latency_ms
        attempt.finished_at = now if outcome.status is not AttemptStatus.UNKNOWN else None
        if failure is not None:
            attempt.unified_code = failure.code
        if decision is not None:
            attempt.decision = decision.action.value
            attempt.reason = decision.reason
            if outcome.query_code:
                attempt.reason = f"status query: {outcome.query_code}; {decision.reason}"
            if decision.alert_ops:
                log.warning(
                    "ops_alert",
                    payment_id=payment.id,
                    attempt_id=attempt.id,
                    provider=attempt.provider,
                    code=failure.code if failure else None,
                    raw_code=outcome.raw_code,
                    reason=decision.reason,
                )
        target = self._payment_target(attempt, decision, following)
        if target is PaymentStatus.FAILED or target is PaymentStatus.REQUIRES_ACTION:
            payment.failure_code = failure.code if failure else None
            payment.failure_message = outcome.raw_message
        if following is not None:
            following.created_at = now

        def write(conn: Connection) -> None:
            repo.update_attempt(conn, attempt)
            self._event(conn, payment, EventType.ATTEMPT_FINISHED, now, attempt=attempt)
            if following is not None:
                repo.insert_attempt(conn, following)
            if target is not None:
                payment.transition(target)
                repo.update_payment(conn, payment, now)
                self._event(conn, payment, _STATUS_EVENTS[target], now, attempt=attempt)

        await self.store.run(write)
        if target is not None:
            PAYMENTS.labels(payment.status.value, attempt.provider).inc()

    @staticmethod
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

    @staticmethod
    def _view(conn: Connection, p: Payment) -> PaymentView:
        return PaymentView(
            p,
            repo.list_attempts(conn, p.id),
            refunds.for_payment(conn, p.id),
            repo.recent_failures(conn, p, REPEAT_WINDOW),
        )

    async def get(self, payment_id: str, merchant_id: str | None = None) -> PaymentView:
        def read(conn: Connection) -> PaymentView:
            return self._view(conn, repo.get_payment(conn, payment_id, merchant_id))

        return await self.store.run(read)

    async def find_by_order(self, merchant_id: str, order_id: str) -> list[PaymentView]:
        def read(conn: Connection) -> list[PaymentView]:
            return [self._view(conn, p) for p in repo.find_by_order(conn, merchant_id, order_id)]

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
                    payment.failure_code = current.unified_code
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
