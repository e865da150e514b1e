"""Customer service's actions on one payment, each audit-logged as the operator on the
payment (`payment:<id>`, so its page's timeline shows it): ask the provider now what
became of its last attempt, send a customer notice again, send the customer a link to
finish the order another way, and add a note.

The notices go out as every notice does (engine/customer_notices.py): an intent and its
`send_notice` job, in the same transaction as the audit entry, delivered by the worker
through the policy's channels. A link is one `finish_link` notice per payment (the
intents' dedupe key); sending it again is a resend.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from paymend.domain.errors import Conflict, InvalidInput, NotFound
from paymend.domain.payment import AttemptStatus, Payment, PaymentStatus
from paymend.engine.audit import Audited, audited
from paymend.engine.payments import PaymentService
from paymend.notify.policy import NoticeKind
from paymend.store import jobs, merchants, notices
from paymend.store import payments as repo
from paymend.store.database import Connection

# the payment's attempt in these states may still change with what the provider says
_UNSETTLED = (AttemptStatus.UNKNOWN, AttemptStatus.REQUIRES_ACTION, AttemptStatus.FAILED)
# a link to finish another way makes sense while the order is not paid
_LINKABLE = (PaymentStatus.FAILED, PaymentStatus.CANCELED)


@dataclass(frozen=True, slots=True)
class Checked:
    """What the provider said of the payment's last attempt, and what it became."""

    attempt_id: str
    channel: str
    told: str  # the attempt status the provider's answer means
    raw_code: str
    before: str  # the payment's status before and after
    after: str


async def check_at_provider(service: PaymentService, payment_id: str, actor: str) -> Checked:
    """Ask the provider now about the payment's last attempt. An answer that settles it
    (an unknown outcome found, a charge found on an attempt recorded failed) is settled
    as a notification saying so would be (engine/settlement.py); a pending attempt's
    call is still in flight and is left to it."""
    payment, attempts = await service.store.run(
        lambda c: (repo.get_payment(c, payment_id), repo.list_attempts(c, payment_id))
    )
    if not attempts:
        raise Conflict("payment_no_attempt", "no provider was called for this payment yet")
    attempt = attempts[-1]
    queried = await service.caller.query(attempt, service.settings.provider_timeout_s)
    if attempt.status in _UNSETTLED and queried.status is not AttemptStatus.UNKNOWN:
        await service.settlement.settle_notified(attempt.id, queried)
    after = await service.store.run(lambda c: repo.get_payment(c, payment_id))
    checked = Checked(
        attempt.id,
        attempt.provider,
        queried.status.value,
        queried.raw_code or "",
        payment.status.value,
        after.status.value,
    )

    def note(_conn: Connection) -> Audited[Checked]:
        details = {
            "attempt_id": checked.attempt_id,
            "channel": checked.channel,
            "told": checked.told,
            "raw_code": checked.raw_code,
            "status": f"{checked.before} -> {checked.after}",
        }
        return Audited(checked, "payment.status_query", f"payment:{payment_id}", details)

    return await audited(service.store, service.clock.now(), actor, None, note)


async def resend_notice(
    service: PaymentService, payment_id: str, intent_id: str, actor: str, reason: str
) -> notices.Intent:
    """Send one of the payment's notices again, from its first channel. One still being
    sent is refused (409): it goes out already."""
    now = service.clock.now()

    def write(conn: Connection) -> Audited[notices.Intent]:
        intent = notices.get(conn, intent_id)
        if intent is None or intent.payment_id != payment_id:
            raise NotFound("notice_not_found", f"no notice '{intent_id}' of this payment")
        if intent.status == notices.PENDING:
            raise Conflict("notice_pending", "this notice is still being sent")
        notices.update(
            conn, intent.id, now, status=notices.PENDING, channel_index=0, tries=0, reason=None
        )
        jobs.enqueue(conn, service.ids.new("job"), jobs.JobKind.SEND_NOTICE, intent.id, now, now)
        details = {"notice_id": intent.id, "kind": intent.kind, "was": intent.status}
        return Audited(intent, "payment.notice_resend", f"payment:{payment_id}", details)

    return await audited(service.store, now, actor, reason, write)


def finish_link(payment: Payment, settings: dict[str, Any], status_url: str) -> str:
    """Where the customer finishes the order: the shop's checkout (its `checkout_url`
    setting, `{order_id}` filled in), else the policy's payment status page."""
    checkout = settings.get("checkout_url")
    if isinstance(checkout, str) and checkout:
        return checkout.replace("{order_id}", payment.order_id)
    return status_url.replace("{payment_id}", payment.id)


async def send_finish_link(
    service: PaymentService, payment_id: str, actor: str, reason: str, status_url: str
) -> str:
    """Tell the customer of a failed or canceled payment where to finish the order with
    another method (a `finish_link` notice); the link sent."""
    now = service.clock.now()

    def write(conn: Connection) -> Audited[str]:
        p = repo.get_payment(conn, payment_id)
        if p.status not in _LINKABLE:
            raise InvalidInput(
                "payment_not_linkable",
                f"the payment is {p.status.value}: a link to pay another way is for a failed"
                " or canceled one",
            )
        shop = merchants.get(conn, p.merchant_id)
        link = finish_link(p, dict(shop.settings), status_url)
        intent_id = service.ids.new("ntc")
        facts = {
            "payment_id": p.id,
            "order_id": p.order_id,
            "amount": p.amount.minor,
            "currency": p.amount.currency,
            "customer": {"id": p.customer.id, "locale": p.customer.locale},
            "failure_code": p.failure_code,
            "link": link,
        }
        made = notices.create(
            conn,
            intent_id,
            merchant_id=p.merchant_id,
            payment_id=p.id,
            order_id=p.order_id,
            kind=NoticeKind.FINISH_LINK.value,
            event_id=service.ids.new("act"),
            customer_key=f"{p.merchant_id}:{p.customer.id}" if p.customer.id else None,
            facts=facts,
            now=now,
        )
        if not made:
            raise Conflict("notice_exists", "the link was sent already: send that notice again")
        jobs.enqueue(conn, service.ids.new("job"), jobs.JobKind.SEND_NOTICE, intent_id, now, now)
        details = {"notice_id": intent_id, "link": link}
        return Audited(link, "payment.finish_link", f"payment:{payment_id}", details)

    return await audited(service.store, now, actor, reason, write)


async def add_note(service: PaymentService, payment_id: str, actor: str, text: str) -> None:
    """A note on the payment's timeline (the audit entry is the note)."""

    def write(conn: Connection) -> Audited[None]:
        repo.get_payment(conn, payment_id)  # NotFound: payment_not_found
        return Audited(None, "payment.note", f"payment:{payment_id}", {})

    await audited(service.store, service.clock.now(), actor, text, write)
