"""Customer notices: from outbox events to one message per (payment, kind), at least once.

`plan` runs inside the webhook relay's transaction (engine/webhooks.py hands it each
batch of events before marking them published), so an event yields its intent exactly
when it is published: a crash before the commit leaves both undone, a crash after leaves
both done. The intent's unique dedupe key is the backstop against two relays.

`deliver` is the `send_notice` job: a failure notice waits the policy's hold and is
dropped if the order got paid meanwhile; quiet hours and the per-hour limit postpone;
then the policy's channels are tried in order. A technical failure is retried on the
policy's schedule; a final one (an invalid number) or a missing contact moves on to the
next channel, the reason kept on the intent. When every channel failed, the merchant
hears `notification.failed`. The customer's contact is opened (store/pii.py) only here,
and only the masked form is logged or stored with a try.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import Counter, Histogram

from paymend.domain import status_links
from paymend.domain.clock import Clock
from paymend.domain.events import EventType
from paymend.domain.masking import mask_email, mask_phone, mask_token
from paymend.engine.ids import IdFactory
from paymend.failures.messages import CustomerMessage, Messages
from paymend.notify.channel import Channel, Message, sms_body
from paymend.notify.policy import ChannelName, NoticeKind, Policy
from paymend.notify.templates import Facts, Rendered, Templates
from paymend.notify.wechat_subscribe import wechat_body
from paymend.observability import get_logger
from paymend.store import jobs, notice_prefs, outbox, pii
from paymend.store import notices as repo
from paymend.store import payments as payments_repo
from paymend.store.database import Connection, Store
from paymend.store.outbox import Event
from paymend.store.webhooks import merchant_settings

log = get_logger("paymend.notices")

SENT = Counter("paymend_notices_sent_total", "Customer notices delivered", ["channel"])
FAILED = Counter("paymend_notices_failed_total", "Customer notice tries that failed", ["channel"])
LATENCY = Histogram("paymend_notice_latency_seconds", "One try of a notice", ["channel"])

# a kind's status text (failures/messages/*.yaml) when it is not a failure's
_STATUS_TEXT = {
    NoticeKind.PAYMENT_SUCCEEDED: "succeeded",
    NoticeKind.LATE_CHARGE_REFUNDED: "canceled",
    NoticeKind.REFUND_DONE: "refunded",
    NoticeKind.COMPENSATION_GRANTED: "succeeded",
    NoticeKind.PAYMENT_HELD: "held",
    NoticeKind.FINISH_LINK: "canceled",  # a canceled payment's link (a failed one: its code)
}


@dataclass(frozen=True, slots=True)
class _Due:
    intent: repo.Intent
    contact: pii.Contact
    support: str
    prefs: notice_prefs.Prefs


class CustomerNotices:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        ids: IdFactory,
        *,
        vault: pii.Vault,
        messages: Messages,
        policy: Policy,
        templates: Templates,
        channels: Mapping[ChannelName, Channel],
        checkout_deadline_s: float,
        link_key: bytes | None = None,
        link_ttl_s: float = 30 * 86400.0,
        public_url: str | None = None,
    ) -> None:
        """`channels`: what carries each of the policy's channel names; a name without
        one is skipped with that reason. `link_key` signs the customer's status link
        (domain/status_links.py): paymend's own page, `{public_url}/pay/{token}`, unless
        the policy names a `status_url` of its own."""
        self.store, self.clock, self.ids = store, clock, ids
        self.vault, self.messages, self.policy = vault, messages, policy
        self.templates, self.channels = templates, dict(channels)
        self.deadline = timedelta(seconds=checkout_deadline_s)
        self.link_key, self.link_ttl = link_key, timedelta(seconds=link_ttl_s)
        self.public_url = public_url.rstrip("/") if public_url else None

    # -- from the outbox ---------------------------------------------------------------

    def plan(self, conn: Connection, batch: Sequence[Event], now: datetime) -> None:
        """Intents (and their jobs) for the events of `batch` the policy tells."""
        for event in batch:
            payment_id = str(event.payload.get("payment_id") or "")
            if not payment_id:
                continue
            try:
                kind = self._kind(conn, event, payment_id)
            except Exception:  # one odd event must not stop the relay for every other
                log.exception("customer_notice_not_planned", event_id=event.id)
                continue
            if kind is None or self.policy.rule(kind) is None:
                continue
            customer = event.payload.get("customer") or {}
            intent_id = self.ids.new("ntc")
            created = repo.create(
                conn,
                intent_id,
                merchant_id=event.merchant_id,
                payment_id=payment_id,
                order_id=str(event.payload.get("order_id", "")),
                kind=kind.value,
                event_id=event.id,
                customer_key=f"{event.merchant_id}:{customer['id']}"
                if customer.get("id")
                else None,
                facts=event.payload,
                now=now,
            )
            if created:
                # a failure is held from when it happened, not from when the relay (up to
                # a sweep later) read it: the customer waits the hold, not hold + sweep
                held = kind is NoticeKind.PAYMENT_FAILED
                run_at = event.created_at + timedelta(seconds=self.policy.failure_hold)
                if not held:
                    run_at = now
                jobs.enqueue(
                    conn, self.ids.new("job"), jobs.JobKind.SEND_NOTICE, intent_id, run_at, now
                )

    def _kind(self, conn: Connection, event: Event, payment_id: str) -> NoticeKind | None:
        """What `event` tells the customer, if anything. A success drops the order's
        pending failure notices; it is told when the checkout had given up (the payment
        was `processing` past its deadline) or a failure notice was planned."""
        type = event.type
        if type == EventType.PAYMENT_HELD:
            return NoticeKind.PAYMENT_HELD
        if type == EventType.DUPLICATE_CHARGE:
            return NoticeKind.LATE_CHARGE_REFUNDED
        if type == EventType.REFUND_SUCCEEDED:
            return NoticeKind.REFUND_DONE
        if type == EventType.COMPENSATION_GRANTED:
            return NoticeKind.COMPENSATION_GRANTED
        if type not in (EventType.PAYMENT_FAILED, EventType.PAYMENT_SUCCEEDED):
            return None
        payment = payments_repo.get_payment(conn, payment_id)
        late = payment.created_at is None or event.created_at - payment.created_at > self.deadline
        held = any(e.type == EventType.PAYMENT_HELD for e in outbox.for_subject(conn, payment_id))
        if type == EventType.PAYMENT_FAILED:
            if held:
                return NoticeKind.REVIEW_OUTCOME
            return NoticeKind.PAYMENT_FAILED if late else None
        told = False
        for other in repo.of_order(conn, event.merchant_id, payment.order_id):
            if other.kind == NoticeKind.PAYMENT_FAILED:
                told = True
                repo.drop_pending(conn, other.id, "the order was paid meanwhile", event.created_at)
        if held:
            return NoticeKind.REVIEW_OUTCOME
        return NoticeKind.PAYMENT_SUCCEEDED if (late or told) else None

    # -- the send_notice job -----------------------------------------------------------

    async def deliver(self, intent_id: str) -> float | None:
        """Try the intent's channels; None when finished, else seconds until next time."""
        now = self.clock.now()
        hour_ago = now - timedelta(hours=1)

        def load(conn: Connection) -> _Due | float | None:
            intent = repo.get(conn, intent_id)
            if intent is None or intent.status != repo.PENDING:
                return None
            if intent.kind == NoticeKind.PAYMENT_FAILED and repo.order_paid(
                conn, intent.merchant_id, intent.order_id
            ):
                repo.drop_pending(conn, intent_id, "the order was paid meanwhile", now)
                return None
            rule = self.policy.rule(NoticeKind(intent.kind))
            if rule is None:
                repo.drop_pending(conn, intent_id, "the policy no longer tells it", now)
                return None
            if not rule.critical and self.policy.quiet_hours is not None:
                wait = self.policy.quiet_hours.wait_s(now)
                if wait > 0:
                    return wait
            limit = self.policy.max_per_customer_per_hour
            if (
                intent.customer_key
                and intent.sent_at is None
                and not repo.reserve(conn, intent_id, intent.customer_key, hour_ago, limit, now)
            ):
                return 600.0  # this customer had enough this hour: when the window moves
            try:
                contact = pii.contact(conn, self.vault, intent.payment_id)
            except pii.SealedValueError:
                # a key no longer configured: every channel is skipped, the worker goes on
                log.warning("customer_notice_contact_unreadable", intent_id=intent_id)
                contact = pii.Contact(None, None)
            settings = merchant_settings(conn, [intent.merchant_id]).get(intent.merchant_id) or {}
            customer_id = (intent.facts.get("customer") or {}).get("id")
            prefs = (
                notice_prefs.load(conn, self.vault, intent.merchant_id, str(customer_id))
                if customer_id
                else notice_prefs.Prefs()
            )
            support = settings.get("support_contact") or self.policy.support
            return _Due(intent, contact, support, prefs)

        due = await self.store.run(load)
        if due is None or isinstance(due, float):
            return due
        intent, kind = due.intent, NoticeKind(due.intent.kind)
        rendered = self._render(intent, kind, due.support, now)
        reasons = [intent.reason] if intent.reason else []
        names = self.policy.channels_for(kind)
        index, tries = intent.channel_index, intent.tries
        while index < len(names):
            name = names[index]
            recipient = {
                ChannelName.SMS: due.contact.phone,
                ChannelName.EMAIL: due.contact.email,
                ChannelName.WECHAT: due.prefs.wechat_openid,
            }.get(name)
            channel = self.channels.get(name)
            opted_out = name.value in due.prefs.opt_out
            if channel is None or not recipient or opted_out:
                why = "not configured" if channel is None else "no contact for it"
                why = "the customer opted out" if opted_out else why
                reasons.append(f"{name}: skipped, {why}")
                index, tries = index + 1, 0
                continue
            ok, retryable, error = await self._try(intent, name, channel, recipient, rendered)
            if ok:
                await self._finish(intent, repo.SENT, now, channel=name, reasons=reasons)
                return None
            tries += 1
            if retryable and tries <= len(self.policy.retry):
                await self.store.run(self._later(intent_id, now, index, tries, reasons))
                return self.policy.retry[tries - 1]
            reasons.append(f"{name}: {error}")
            index, tries = index + 1, 0
        await self._finish(intent, repo.FAILED, now, reasons=reasons, tell_merchant=True)
        return None

    @staticmethod
    def _later(
        intent_id: str, now: datetime, index: int, tries: int, reasons: Sequence[str]
    ) -> Callable[[Connection], None]:
        def write(conn: Connection) -> None:
            repo.update(
                conn, intent_id, now, channel_index=index, tries=tries, reason=_join(reasons)
            )

        return write

    def status_url(self, payment_id: str, now: datetime, locale: str | None = None) -> str:
        """The customer's link to the payment: the policy's `status_url`, its `{token}`
        signed to expire later; without one, paymend's own status page in the customer's
        `locale` (docs/customers.md). Empty when no link can be made (no key or no public
        URL: notice_setup.py refuses to start that way, so only a bare set-up meets it)."""
        key = self.link_key
        token = status_links.sign(key, payment_id, now + self.link_ttl) if key else ""
        if self.policy.status_url is not None:
            return self.policy.status_url.format(payment_id=payment_id, token=token)
        if not token or self.public_url is None:
            return ""
        return f"{self.public_url}/pay/{token}" + (f"?lang={locale}" if locale else "")

    def _render(
        self, intent: repo.Intent, kind: NoticeKind, support: str, now: datetime
    ) -> Rendered:
        facts = intent.facts
        locale = self.messages.negotiate((facts.get("customer") or {}).get("locale"))
        code = facts.get("failure_code")
        text: CustomerMessage
        told_code = (NoticeKind.PAYMENT_FAILED, NoticeKind.REVIEW_OUTCOME, NoticeKind.FINISH_LINK)
        if code and kind in told_code:
            # the public code: a fraud or risk reason reads as a plain decline
            text = self.messages.render(str(code), locale, support_contact=support)
        else:
            status = _STATUS_TEXT.get(kind, "succeeded")
            text = self.messages.render_status(status, locale, support_contact=support)
        return self.templates.render(
            Facts(
                kind.value,
                locale,
                int(facts.get("amount", 0)),
                str(facts.get("currency", "CNY")),
                intent.order_id,
                text.title,
                text.detail,
                text.suggestions,
                # a finish link (engine/care.py) carries its own: the shop's checkout
                str(facts.get("link") or self.status_url(intent.payment_id, now, locale)),
                support,
                now,
            )
        )

    async def _try(
        self, intent: repo.Intent, name: ChannelName, channel: Channel, to: str, r: Rendered
    ) -> tuple[bool, bool, str | None]:
        if name is ChannelName.SMS:
            template = (
                self.policy.sms.templates.get(NoticeKind(intent.kind), "")
                if self.policy.sms
                else ""
            )
            body = sms_body(template, r.params, r.sms)
        elif name is ChannelName.WECHAT:
            wx = self.policy.wechat
            chosen = wx.templates.get(NoticeKind(intent.kind)) if wx else None
            spec = chosen.model_dump() if chosen else {"id": "", "data": {"thing1": "title"}}
            page = wx.page.format(payment_id=intent.payment_id) if wx and wx.page else None
            body = wechat_body(spec, r.params | {"title": r.subject}, page)
        else:
            body = json.dumps({"subject": r.subject, "text": r.text, "html": r.html}).encode()
        mask = {ChannelName.SMS: mask_phone, ChannelName.WECHAT: mask_token}.get(name, mask_email)
        masked = mask(to) or "***"
        start = self.clock.monotonic()
        sent = await channel.send(Message(intent.dedupe_key, to, body))
        seconds = self.clock.monotonic() - start
        LATENCY.labels(name.value).observe(seconds)
        (SENT if sent.delivered else FAILED).labels(name.value).inc()
        log.info(
            "customer_notice_try",
            intent_id=intent.id,
            kind=intent.kind,
            channel=name.value,
            recipient=masked,
            delivered=sent.delivered,
            code=sent.code,
            error=sent.error,
        )
        now = self.clock.now()
        await self.store.run(
            lambda conn: repo.add_attempt(
                conn,
                intent.id,
                channel=name.value,
                recipient=masked,
                delivered=sent.delivered,
                code=sent.code,
                error=sent.error,
                latency_ms=round(seconds * 1000),
                at=now,
            )
        )
        return sent.delivered, sent.retryable, sent.error

    async def _finish(
        self,
        intent: repo.Intent,
        status: str,
        now: datetime,
        *,
        channel: ChannelName | None = None,
        reasons: Sequence[str] = (),
        reason: str | None = None,
        tell_merchant: bool = False,
    ) -> None:
        def write(conn: Connection) -> None:
            values: dict[str, Any] = {"status": status, "reason": reason or _join(reasons)}
            if channel is not None:
                values |= {"channel": channel.value, "sent_at": now}
            repo.update(conn, intent.id, now, **values)
            if tell_merchant:
                payload = {
                    "payment_id": intent.payment_id,
                    "order_id": intent.order_id,
                    "notice": intent.kind,
                    "reasons": list(reasons),
                }
                outbox.add(
                    conn,
                    self.ids.new("evt"),
                    intent.merchant_id,
                    EventType.NOTIFICATION_FAILED,
                    intent.payment_id,
                    payload,
                    now,
                )

        await self.store.run(write)
        if tell_merchant:
            log.warning("customer_notice_failed", intent_id=intent.id, reasons=list(reasons))


def _join(reasons: Sequence[str]) -> str | None:
    return "; ".join(r for r in reasons if r)[:1000] or None
