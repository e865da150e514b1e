"""Payments for customer service: the search (the merchant API's own listing, engine/
listing.py, across the filters it offers) and one payment's whole story as a timeline,
read from the repositories in one transaction: attempts with their codes, decisions and
reasons, events and their webhook deliveries, refunds, compensations, customer notices
and operators' actions, and what the customer was told in their own language."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from paymend.domain.compensation import Compensation
from paymend.domain.money import Money
from paymend.domain.payment import PaymentStatus
from paymend.engine.payments import REPEAT_WINDOW, PaymentView
from paymend.engine.runtime import Runtime
from paymend.failures.classify import Classifier
from paymend.store import compensations, notices, outbox, refunds, webhooks
from paymend.store import controls as audit_repo
from paymend.store import payments as repo
from paymend.store.controls import AuditEntry
from paymend.store.database import Connection
from paymend.store.notices import Intent
from paymend.store.outbox import Event

Translate = Callable[..., str]


@dataclass(frozen=True, slots=True)
class Story:
    view: PaymentView
    events: list[Event]
    deliveries: list[dict[str, Any]]
    compensations: list[Compensation]
    notices: list[tuple[Intent, list[dict[str, Any]]]]
    audit: list[AuditEntry]


def read_story(runtime: Runtime, payment_id: str) -> Callable[[Connection], Story]:
    def read(conn: Connection) -> Story:
        p = repo.get_payment(conn, payment_id)  # NotFound: payment_not_found
        repeats = repo.recent_failures(conn, p, REPEAT_WINDOW) if p.failure_code else 0
        view = PaymentView(
            p, repo.list_attempts(conn, p.id), refunds.for_payment(conn, p.id), repeats
        )
        found = outbox.for_subject(conn, p.id)
        return Story(
            view,
            found,
            webhooks.of_events(conn, [e.id for e in found]),
            compensations.for_payment(conn, p.id),
            [(i, notices.attempts(conn, i.id)) for i in notices.for_payment(conn, p.id)],
            [  # what operators did to it; who read it is in the audit log itself
                e
                for e in audit_repo.audit_entries(conn, 200, target=f"payment:{p.id}")
                if e["action"] != "payment.lookup"
            ],
        )

    return read


@dataclass(frozen=True, slots=True)
class Told:
    """What the customer read for this payment, in their locale."""

    locale: str
    title: str
    detail: str
    suggestions: list[str]


def customer_told(view: PaymentView, classifier: Classifier, support: str | None) -> Told:
    """The message the checkout showed (the API's `customer_message`): the failure's text
    once it failed, else its status's, in the customer's own locale."""
    p = view.payment
    messages = classifier.messages
    locale = messages.negotiate(p.customer.locale)
    if p.status is PaymentStatus.FAILED:
        code = p.failure_code if p.failure_code in classifier.catalogue else None
        message = messages.render(
            code or classifier.catalogue.DEFAULT,
            locale,
            support_contact=support,
            method=p.method,
            repeat=view.repeat_failures,
        )
    else:
        status = PaymentStatus.PROCESSING if p.status is PaymentStatus.CREATED else p.status
        message = messages.render_status(
            status.value, locale, support_contact=support, method=p.method
        )
    return Told(message.locale, message.title, message.detail, list(message.suggestions))


@dataclass(slots=True)
class Entry:
    """One line of the timeline."""

    at: datetime | None
    kind: str  # created | attempt | event | refund | compensation | notice | audit
    title: str
    facts: list[tuple[str, str]] = field(default_factory=list)
    tone: str = "neutral"  # good | bad | neutral


def _money(minor: int, currency: str) -> str:
    return f"{Money(minor, currency).format()} {currency}"


_TOLD = ("channel", "told", "raw_code", "status", "kind", "link")
_TONE = {"succeeded": "good", "failed": "bad", "unknown": "bad", "canceled": "bad"}


def timeline(story: Story, t: Translate) -> list[Entry]:
    """The story in time order (entries of one moment keep the order they were read in)."""
    p = story.view.payment
    entries = [
        Entry(
            p.created_at,
            "created",
            t("tl.created", amount=_money(p.amount.minor, p.amount.currency), method=p.method),
        )
    ]
    for a in story.view.attempts:
        facts = [
            (t("tl.raw"), " ".join(x for x in (a.raw_code, a.raw_message) if x)),
            (t("tl.unified"), a.unified_code or ""),
            (t("tl.decision"), " — ".join(x for x in (a.decision, a.reason) if x)),
            (t("tl.latency"), t("tl.ms", ms=a.latency_ms) if a.latency_ms is not None else ""),
            (t("payment.trace"), a.trace_id or ""),
            (t("tl.finished"), a.finished_at.strftime("%H:%M:%S.%f")[:-3] if a.finished_at else ""),
        ]
        entries.append(
            Entry(
                a.created_at,
                "attempt",
                t("tl.attempt", seq=a.seq, channel=a.provider, status=a.status.value),
                [(k, v) for k, v in facts if v],
                _TONE.get(a.status.value, "neutral"),
            )
        )
    delivered: dict[str, list[dict[str, Any]]] = {}
    for d in story.deliveries:
        delivered.setdefault(d["event_id"], []).append(d)
    for e in story.events:
        facts = [
            ("webhook", f"{d['status']} ×{d['tries']} ({d['last_status_code'] or '-'}) {d['url']}")
            for d in delivered.get(e.id, [])
        ]
        if e.payload.get("reason"):  # why it waits (engine/waiting.py) or is held
            facts.insert(0, (t("payment.reason"), str(e.payload["reason"])))
        entries.append(Entry(e.created_at, "event", t("tl.event", type=e.type), facts))
    for r in story.view.refunds:
        facts = [(t("payment.reason"), r.reason or ""), (t("tl.raw"), r.raw_code or "")]
        entries.append(
            Entry(
                r.created_at,
                "refund",
                t(
                    "tl.refund",
                    id=r.id,
                    amount=_money(r.amount.minor, r.amount.currency),
                    status=r.status.value,
                ),
                [(k, v) for k, v in facts if v],
                _TONE.get(r.status.value, "neutral"),
            )
        )
    for c in story.compensations:
        entries.append(
            Entry(
                c.created_at,
                "compensation",
                t(
                    "tl.compensation",
                    kind=c.kind.value,
                    amount=_money(c.amount, c.currency),
                    by=c.granted_by,
                ),
                [(t("payment.reason"), c.reason)],
            )
        )
    for intent, tries in story.notices:
        facts = [
            (
                t(
                    "tl.notice_try",
                    channel=x["channel"],
                    result=t("tl.delivered") if x["delivered"] else t("tl.not_delivered"),
                ),
                x["error"] or "",
            )
            for x in tries
        ]
        if intent.reason:
            facts.append((t("payment.reason"), intent.reason))
        entries.append(
            Entry(
                intent.created_at,
                "notice",
                t("tl.notice", kind=intent.kind, status=intent.status),
                facts,
            )
        )
    for entry in story.audit:
        facts = [(t("payment.reason"), entry["reason"] or "")]
        # what a status query heard, which notice or link went out (engine/care.py)
        facts += [(k, str(v)) for k, v in entry["details"].items() if k in _TOLD and v]
        entries.append(
            Entry(
                datetime.fromisoformat(entry["at"]),
                "audit",
                t("tl.audit", actor=entry["actor"], action=entry["action"]),
                [(k, v) for k, v in facts if v],
            )
        )
    order = {id(e): i for i, e in enumerate(entries)}
    entries.sort(key=lambda e: (e.at.timestamp() if e.at else 0.0, order[id(e)]))
    return entries
