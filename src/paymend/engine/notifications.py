"""Notifications a provider sends on its own (`POST /v1/providers/{channel}/notifications`):
verified, then settled through the same path as a status query's answer.

The channel's connector reads the raw body and headers (its `InboundNotifications`
capability), verifying the provider's signature before anything of it is believed: one
that does not verify is refused (400 `notification_not_verified`), logged, and changes
nothing. A verified one names the charge by our idempotency key (the attempt's key,
which the provider echoes as its order number); it settles that attempt exactly as a
status query would (engine/settlement.py): an unknown outcome becomes the payment's
success, or a failure that lets the payment fail over; a charge that lands after the
payment settled another way is reversed and refunded (engine/late_success.py). The same
notification twice changes nothing: the second finds the attempt settled.

A notification about a refund (Adyen's REFUND / REFUND_FAILED, which names the refund's
idempotency key) settles that refund as the refund call's final answer would.

The answer is the provider's expected acknowledgement (Alipay: the text `success`), so it
stops resending; it is withheld (409 `attempt_in_flight`) while the attempt's own call
is still in flight, so the provider tells again later rather than racing that call.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import Counter

from paymend.domain.errors import Conflict, InvalidInput, NotFound
from paymend.domain.payment import AttemptStatus
from paymend.engine.calls import CallOutcome, told_status
from paymend.engine.ops_events import OpsEventKind, raise_event
from paymend.engine.refunds import RefundService
from paymend.engine.settlement import Settlement
from paymend.observability import get_logger
from paymend.providers.base import (
    InboundNotifications,
    NotificationIgnored,
    NotificationReply,
    Provider,
    ProviderNotification,
)
from paymend.store import payments as repo
from paymend.store import reconciliation
from paymend.store.database import Store

log = get_logger("paymend.notifications")
NOTIFICATIONS = Counter(
    "paymend_provider_notifications_total",
    "Provider notifications received, by channel and what became of them",
    ["channel", "result"],
)


class Notifications:
    """Receives the providers' notifications for the API."""

    def __init__(
        self,
        store: Store,
        providers: Mapping[str, Provider],
        settlement: Settlement,
        refunds: RefundService,
    ) -> None:
        self.store = store
        self.providers = providers
        self.settlement = settlement
        self.refunds = refunds

    async def receive(
        self, channel: str, headers: Mapping[str, str], body: bytes
    ) -> NotificationReply:
        """Verify and apply one notification; the reply the provider expects."""
        provider = self.providers.get(channel)
        if provider is None:
            raise NotFound("channel_not_found", f"no channel '{channel}' is configured")
        if not isinstance(provider, InboundNotifications):
            raise NotFound(
                "notifications_not_supported", f"channel '{channel}' takes no notifications"
            )
        try:
            told = provider.parse_notification(headers, body)
        except NotificationIgnored as exc:
            NOTIFICATIONS.labels(channel, "ignored").inc()
            log.info("notification_ignored", channel=channel, why=str(exc)[:200])
            return exc.reply
        except ValueError as exc:
            NOTIFICATIONS.labels(channel, "refused").inc()
            log.warning("notification_refused", channel=channel, why=str(exc)[:200])
            raise InvalidInput(
                "notification_not_verified",
                "the notification's signature does not verify or it cannot be read; "
                "nothing was changed",
            ) from None
        if told.refund_key is not None:
            return await self._refund(channel, told)
        key = told.idempotency_key
        found = await self.store.run(
            lambda conn: reconciliation.by_idempotency_key(conn, [key] if key else [])
        )
        row = found.get(key) if key else None
        attempt = (
            await self.store.run(lambda conn: repo.get_attempt(conn, row.attempt_id))
            if row is not None
            else None
        )
        if attempt is None or attempt.provider != channel:
            NOTIFICATIONS.labels(channel, "unknown_charge").inc()
            log.warning("notification_unknown_charge", channel=channel, reference=told.reference)
            return told.reply  # not ours to settle; resending would not change that
        if told.amount is not None and row is not None and told.amount.minor != row.amount:
            NOTIFICATIONS.labels(channel, "amount_mismatch").inc()
            log.warning(
                "ops_alert",
                channel=channel,
                attempt_id=attempt.id,
                reason=f"notification for {told.amount.minor}, payment of {row.amount}: "
                "not settled, reconcile",
            )
            now, told_minor, paid_minor = self.refunds.clock.now(), told.amount.minor, row.amount
            await self.store.run(
                lambda conn: raise_event(
                    conn,
                    now,
                    OpsEventKind.AMOUNT_MISMATCH,
                    f"{attempt.id}:{told_minor}",
                    f"{channel} notified {told_minor} for a payment of {paid_minor}: "
                    "not settled, reconcile",
                    scope={"channel": channel},
                    payment_id=attempt.payment_id,
                    attempt_id=attempt.id,
                )
            )
            return told.reply
        status = told_status(told.result)
        outcome = CallOutcome(
            status,
            told.result.raw_code,
            told.result.raw_message,
            told.reference or told.result.reference,
            0,
            True,
            query_code=f"notification {told.result.raw_code}",
        )
        if status is AttemptStatus.UNKNOWN:  # the provider is still working on it
            NOTIFICATIONS.labels(channel, "pending").inc()
            return told.reply
        if not await self.settlement.settle_notified(attempt.id, outcome):
            NOTIFICATIONS.labels(channel, "too_early").inc()
            raise Conflict(
                "attempt_in_flight",
                "the call this notification is about is still in flight; send it again later",
            )
        NOTIFICATIONS.labels(channel, "applied").inc()
        log.info(
            "notification_applied",
            channel=channel,
            attempt_id=attempt.id,
            payment_id=attempt.payment_id,
            raw_code=told.result.raw_code,
        )
        return told.reply

    async def _refund(self, channel: str, told: ProviderNotification) -> NotificationReply:
        """A notification about a refund: settles it (engine/refunds.py); one about no
        refund of this channel is acknowledged and changes nothing."""
        assert told.refund_key is not None
        refund = await self.refunds.settle_notified(channel, told.refund_key, told.result)
        result = "refund_unknown" if refund is None else "refund_applied"
        NOTIFICATIONS.labels(channel, result).inc()
        log.info(
            "notification_refund",
            channel=channel,
            refund_id=refund.id if refund else None,
            status=refund.status.value if refund else None,
            raw_code=told.result.raw_code,
        )
        return told.reply
