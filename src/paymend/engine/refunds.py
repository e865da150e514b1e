"""Refunds: asked for by the merchant, or sent back on paymend's own initiative when a
payment was charged twice. Idempotent at the provider under the refund's id, reserved
against the captured amount before the call, resent by the worker until the provider
gives a final answer. The resend job is written with the reservation, so a crash before
the call leaves a refund the worker sends, never one nobody sends."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from paymend.domain.clock import Clock
from paymend.domain.errors import InvalidInput, NotFound
from paymend.domain.events import EventType
from paymend.domain.ids import AttemptId, RefundId
from paymend.domain.money import Money
from paymend.domain.payment import (
    Attempt,
    AttemptStatus,
    Payment,
    Refund,
    RefundKind,
    RefundStatus,
)
from paymend.engine.commands import RefundCommand
from paymend.engine.events import emit
from paymend.engine.ids import IdFactory
from paymend.engine.ops_events import OpsEventKind, raise_event
from paymend.engine.stale import retry_stale
from paymend.observability import get_logger
from paymend.providers.base import (
    Provider,
    ProviderOutcome,
    ProviderResult,
    RefundRequest,
    Refunds,
)
from paymend.store import idempotency, jobs, refunds
from paymend.store import payments as repo
from paymend.store.database import Connection, Store

log = get_logger("paymend.refunds")
RESEND_AFTER = timedelta(seconds=5)


class RefundService:
    def __init__(
        self, store: Store, providers: Mapping[str, Provider], clock: Clock, ids: IdFactory
    ) -> None:
        self.store = store
        self.providers = providers
        self.clock = clock
        self.ids = ids

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
            amount = payment.reserve_refund(cmd.amount)
            if charged is None or charged.provider_reference is None:  # pragma: no cover
                raise InvalidInput("payment_not_refundable", "no captured charge to refund")
            channel = self.providers.get(charged.provider)
            if channel is not None and not isinstance(channel, Refunds):
                raise InvalidInput(
                    "refund_not_supported",
                    f"channel {charged.provider} takes no refunds through paymend; refund "
                    "the charge with the provider",
                    status=409,
                )
            refund = Refund(
                id=RefundId(self.ids.new("re")),
                payment_id=payment.id,
                amount=Money(amount, payment.amount.currency),
                provider=charged.provider,
                attempt_id=charged.id,
                reason=cmd.reason,
                created_at=now,
                updated_at=now,
            )
            refunds.insert(conn, refund)
            repo.update_payment(conn, payment, now)
            idempotency.link(conn, cmd.claim, "refund", refund.id)
            jobs.enqueue(
                conn,
                self.ids.new("job"),
                jobs.JobKind.RESEND_REFUND,
                refund.id,
                now + RESEND_AFTER,
                now,
            )
            return refund, charged.provider_reference

        refund, reference = await retry_stale(self.store, reserve)
        return await self.send(refund, reference, schedule_retry=False)

    async def get(self, refund_id: str, merchant_id: str) -> Refund:
        """One of the merchant's refunds."""

        def read(conn: Connection) -> Refund:
            refund = refunds.get(conn, refund_id)
            repo.get_payment(conn, refund.payment_id, merchant_id)  # NotFound if not theirs
            return refund

        return await self.store.run(read)

    def refund_duplicate(
        self, conn: Connection, payment: Payment, attempt: Attempt, now: datetime
    ) -> Refund:
        """Book the refund of an extra charge (in the caller's transaction); the worker
        sends it at once."""
        refund = Refund(
            id=RefundId(self.ids.new("re")),
            payment_id=payment.id,
            amount=payment.amount,
            provider=attempt.provider,
            kind=RefundKind.DUPLICATE,
            attempt_id=AttemptId(attempt.id),
            reason=f"duplicate charge by attempt {attempt.id}: refunded automatically",
            created_at=now,
            updated_at=now,
        )
        refunds.insert(conn, refund)
        jobs.enqueue(conn, self.ids.new("job"), jobs.JobKind.RESEND_REFUND, refund.id, now, now)
        return refund

    async def send(
        self, refund: Refund, charge_reference: str, *, schedule_retry: bool = True
    ) -> Refund:
        provider = self.providers.get(refund.provider)
        result = None
        if isinstance(provider, Refunds):  # else it stays pending: ops see it buried
            try:
                result = await provider.refund(
                    RefundRequest(refund.idempotency_key, charge_reference, refund.amount)
                )
            except Exception as exc:  # noqa: BLE001 - stays pending; the worker resends it
                log.warning("refund_call_failed", refund_id=refund.id, error=type(exc).__name__)
        now = self.clock.now()
        if result is None or result.outcome not in (
            ProviderOutcome.SUCCEEDED,
            ProviderOutcome.DECLINED,
        ):
            if schedule_retry:

                def later(conn: Connection) -> None:
                    jobs.enqueue(
                        conn,
                        self.ids.new("job"),
                        jobs.JobKind.RESEND_REFUND,
                        refund.id,
                        now + RESEND_AFTER,
                        now,
                    )

                await self.store.run(later)
            return refund
        return await self._settle(refund.id, result)

    async def _settle(self, refund_id: str, result: ProviderResult) -> Refund:
        """Record a final answer (SUCCEEDED or DECLINED) on a pending refund; a refund
        settled already is left as it is."""
        ok = result.outcome is ProviderOutcome.SUCCEEDED
        now = self.clock.now()

        def settle(conn: Connection) -> Refund:
            current = refunds.get(conn, refund_id)
            if current.status is not RefundStatus.PENDING:
                return current
            payment = repo.get_payment(conn, current.payment_id)
            current.transition(RefundStatus.SUCCEEDED if ok else RefundStatus.FAILED)
            current.raw_code, current.raw_message = result.raw_code, result.raw_message
            current.provider_reference = result.reference or current.provider_reference
            current.updated_at = now
            refunds.update(conn, current)
            if current.kind is RefundKind.MERCHANT:
                payment.settle_refund(current.amount.minor, succeeded=ok)
                repo.update_payment(conn, payment, now)
            kind = EventType.REFUND_SUCCEEDED if ok else EventType.REFUND_FAILED
            emit(conn, self.ids.new("evt"), payment, kind, now, refund=current)
            if ok and current.kind is RefundKind.MERCHANT:
                emit(
                    conn,
                    self.ids.new("evt"),
                    payment,
                    EventType.PAYMENT_REFUNDED,
                    now,
                    refund=current,
                )
            return current

        return await retry_stale(self.store, settle)

    async def settle_notified(
        self, channel: str, refund_key: str, result: ProviderResult
    ) -> Refund | None:
        """A provider's verified notification about a refund (Adyen's REFUND /
        REFUND_FAILED): settles the pending refund whose idempotency key it names, as
        the refund call's own final answer would. None when no refund of `channel` has
        that key; a refund settled already is returned unchanged (a replay)."""
        refund_id = refund_key.removeprefix("paymend-")

        def find(conn: Connection) -> Refund | None:
            try:
                found = refunds.get(conn, refund_id)
            except NotFound:
                return None
            return found if found.provider == channel else None

        found = await self.store.run(find)
        if found is None or result.outcome not in (
            ProviderOutcome.SUCCEEDED,
            ProviderOutcome.DECLINED,
        ):
            return found
        if found.status is not RefundStatus.PENDING:
            if (found.status is RefundStatus.SUCCEEDED) != (
                result.outcome is ProviderOutcome.SUCCEEDED
            ):
                log.warning(
                    "ops_alert",
                    refund_id=found.id,
                    reason=f"the provider says {result.raw_code} of a refund recorded "
                    f"{found.status.value}: check it with the provider",
                )
                now = self.clock.now()
                title = (
                    f"{channel} says {result.raw_code} of refund {found.id}, recorded "
                    f"{found.status.value}: check it with the provider"
                )
                await self.store.run(
                    lambda conn: raise_event(
                        conn,
                        now,
                        OpsEventKind.REFUND_MISMATCH,
                        f"{found.id}:{result.raw_code}",
                        title,
                        scope={"channel": channel},
                        refund_id=found.id,
                        payment_id=found.payment_id,
                        raw_code=result.raw_code,
                    )
                )
            return found
        return await self._settle(found.id, result)

    async def resend(self, refund_id: str) -> bool:
        """Send a pending refund again under its own idempotency key; True when final."""

        def load(conn: Connection) -> tuple[Refund, str | None]:
            refund = refunds.get(conn, refund_id)
            attempt = next(
                (
                    a
                    for a in repo.list_attempts(conn, refund.payment_id)
                    if a.id == refund.attempt_id
                ),
                None,
            )
            return refund, attempt.provider_reference if attempt else None

        refund, reference = await self.store.run(load)
        if refund.status is not RefundStatus.PENDING:
            return True
        if reference is None:
            log.error("refund_without_charge", refund_id=refund.id)
            return True
        sent = await self.send(refund, reference, schedule_retry=False)
        return sent.status is not RefundStatus.PENDING
