"""Customers' feedback and the pain-point report built from it.

Feedback comes from the status page, a help article's "did this help?" and the
merchant's own checkout (`POST /v1/feedback`). Free text is masked (domain/masking.py:
cards, emails, phone and other long numbers) before it is stored; the payment's failure
code, channel, method and bank are copied beside it, so the report groups by what hurt.
The report compares the last `days` with the `days` before (the trend) and shows a few
of the latest words for each group, so a team sees which failure hurts most this week.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from paymend.domain.errors import InvalidInput
from paymend.domain.masking import mask_free_text
from paymend.domain.printable import unprintable
from paymend.engine.payments import PaymentService, PaymentView
from paymend.store import feedback as repo
from paymend.store.database import Connection, Store

SOURCES = ("status_page", "help", "api")
# what went wrong, as the forms offer it (their words: customers/i18n.py)
REASONS = (
    "unclear_message",
    "failed_again",
    "charged_but_failed",
    "too_slow",
    "method_missing",
    "verification_trouble",
    "other",
)
DIMENSIONS = ("failure_code", "channel", "method", "bank", "step")
MAX_TEXT = 1000
_STEP_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")


@dataclass(frozen=True, slots=True)
class Said:
    """One piece of feedback as given (checked by `record`)."""

    source: str
    step: str
    rating: int | None = None
    helpful: bool | None = None
    reasons: tuple[str, ...] = ()
    text: str = ""
    locale: str = "en"
    failure_code: str = ""  # for a help article read without a payment: its code


def check(said: Said) -> None:
    """InvalidInput (a machine code and the field) for feedback that cannot be kept."""
    if said.source not in SOURCES:
        raise InvalidInput("feedback_source_invalid", "unknown source", param="source")
    if not said.step or len(said.step) > 40 or not set(said.step) <= _STEP_CHARS:
        raise InvalidInput("feedback_step_invalid", "step: 1 to 40 of a-z, 0-9 and _", param="step")
    if said.rating is not None and not 1 <= said.rating <= 5:
        raise InvalidInput("feedback_rating_invalid", "rating: 1 to 5", param="rating")
    unknown = [r for r in said.reasons if r not in REASONS]
    if unknown or len(set(said.reasons)) != len(said.reasons):
        raise InvalidInput(
            "feedback_reason_invalid",
            f"reasons: each at most once, from {', '.join(REASONS)}",
            param="reasons",
        )
    if len(said.text) > MAX_TEXT or unprintable(said.text, multiline=True):
        raise InvalidInput(
            "feedback_text_invalid",
            f"text: at most {MAX_TEXT} printable characters",
            param="text",
        )
    if said.rating is None and said.helpful is None and not said.reasons and not said.text.strip():
        raise InvalidInput(
            "feedback_empty", "give a rating, helpful, a reason or some text", param="rating"
        )


async def record(
    service: PaymentService,
    said: Said,
    view: PaymentView | None = None,
    *,
    merchant_id: str | None = None,
) -> dict[str, Any]:
    """Store `said` (about the payment of `view`, if any; else from `merchant_id`'s
    checkout, or from a help article), its text masked; the row."""
    check(said)
    p = view.payment if view else None
    last = view.attempts[-1] if view and view.attempts else None
    row: dict[str, Any] = {
        "id": service.ids.new("fb"),
        "merchant_id": p.merchant_id if p else merchant_id,
        "payment_id": p.id if p else None,
        "source": said.source,
        "step": said.step,
        "rating": said.rating,
        "helpful": said.helpful,
        "reasons": list(said.reasons),
        "text": mask_free_text(said.text.strip())[:MAX_TEXT],
        "failure_code": (p.failure_code if p else None) or said.failure_code,
        "channel": last.provider if last else "",
        "method": p.method if p else "",
        "bank": (p.bank if p else None) or "",
        "locale": said.locale[:16],
        "created_at": service.clock.now(),
    }

    def write(conn: Connection) -> None:
        repo.insert(conn, row)

    await service.store.run(write)
    return row


@dataclass
class Group:
    """Feedback sharing one value of a dimension (a failure code, a channel…)."""

    value: str
    count: int = 0  # in the period
    before: int = 0  # in the period before it, as long
    unhappy: int = 0  # rated 1-2, or "did not help"
    reasons: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)  # the latest masked texts

    @property
    def trend(self) -> int:
        return self.count - self.before


@dataclass(frozen=True, slots=True)
class Report:
    start: datetime
    end: datetime
    total: int
    before: int
    by: dict[str, list[Group]]  # dimension -> groups, most feedback first


def build_report(
    rows: list[dict[str, Any]], start: datetime, end: datetime, examples: int = 3
) -> Report:
    """Group `rows` (the period's and the period before's, newest first) by each
    dimension. Pure, so the CLI, the console and tests read the same figures."""
    by: dict[str, dict[str, Group]] = {d: {} for d in DIMENSIONS}
    total = before = 0
    for row in rows:
        now = row["created_at"] >= start
        total += now
        before += not now
        for dim in DIMENSIONS:
            value = row[dim] or "-"
            group = by[dim].setdefault(value, Group(value))
            if not now:
                group.before += 1
                continue
            group.count += 1
            rating = row["rating"]
            group.unhappy += (rating is not None and rating <= 2) or row["helpful"] is False
            group.reasons.update(row["reasons"] or ())
            if row["text"] and len(group.examples) < examples:
                group.examples.append(row["text"])
    ranked = {
        dim: sorted(
            (g for g in groups.values() if g.count or g.before),
            key=lambda g: (-g.count, -g.unhappy, g.value),
        )
        for dim, groups in by.items()
    }
    return Report(start, end, total, before, ranked)


async def report(store: Store, end: datetime, days: int = 7) -> Report:
    """The `days` before `end` against the `days` before those."""
    start = end - timedelta(days=days)

    def read(conn: Connection) -> list[dict[str, Any]]:
        return repo.since(conn, start - timedelta(days=days), end)

    return build_report(await store.run(read), start, end)


def as_dict(report: Report) -> dict[str, Any]:
    return {
        "start": report.start.isoformat(),
        "end": report.end.isoformat(),
        "total": report.total,
        "before": report.before,
        "by": {
            dim: [
                {
                    "value": g.value,
                    "count": g.count,
                    "before": g.before,
                    "trend": g.trend,
                    "unhappy": g.unhappy,
                    "reasons": dict(g.reasons.most_common()),
                    "examples": g.examples,
                }
                for g in groups
            ]
            for dim, groups in report.by.items()
        },
    }


def as_text(report: Report, top: int = 5) -> str:
    """The report for a terminal: per dimension its `top` groups, their trend against
    the period before, what went wrong most, and an example."""
    when = "%Y-%m-%d %H:%M"
    lines = [
        f"Feedback {report.start:{when}} to {report.end:{when}} UTC: {report.total} "
        f"(the period before: {report.before})"
    ]
    for dim, groups in report.by.items():
        lines += ["", f"By {dim.replace('_', ' ')}:"]
        if not groups:
            lines.append("  (none)")
        for g in groups[:top]:
            reasons = ", ".join(f"{r} {n}" for r, n in g.reasons.most_common(3))
            lines.append(
                f"  {g.value:<28} {g.count:>5} ({g.trend:+d})  unhappy {g.unhappy}"
                + (f"  {reasons}" if reasons else "")
            )
            lines += [f'      "{e}"' for e in g.examples[:1]]
    return "\n".join(lines)
