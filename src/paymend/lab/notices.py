"""Customer notices in the lab: the real planner and delivery, an SMS inbox per customer
that answers like a gateway after a simulated moment, and the figures a run gives:
notices per payment and how long after its event a notice arrived (p99).

On only when the scenario asks (`notices: true`): it gives each customer a phone, which
the engine seals and indexes, and the planner reads each late outcome's payment.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from paymend.domain.clock import Clock
from paymend.engine.customer_notices import CustomerNotices
from paymend.engine.payments import PaymentService
from paymend.notify.channel import Message, Sent
from paymend.notify.policy import ChannelName, NoticeKind, load_policy
from paymend.notify.templates import Templates
from paymend.store import notices as notices_repo
from paymend.store.database import Connection

GATEWAY_S = 0.3  # an SMS gateway's answer, simulated
NOTICE_FIGURES = (  # what the report shows, when the run told customers
    "notices_sent",
    "notices_dropped",
    "notices_per_payment",
    "p99_notice_delay_s",
    "p99_notice_delay_after_hold_s",
)


@dataclass(slots=True)
class LabInbox:
    """Every customer's phone: takes each SMS after `GATEWAY_S` of simulated time."""

    clock: Clock
    name: str = "lab_sms"
    received: list[str] = field(default_factory=list)  # dedupe keys, in arrival order
    heard: Callable[[str], None] | None = None  # the customer reads it (lab/journeys.py)

    async def send(self, message: Message) -> Sent:
        await self.clock.sleep(GATEWAY_S)
        self.received.append(message.dedupe_key)
        if self.heard is not None:
            self.heard(message.dedupe_key)
        return Sent(True, 0)

    async def close(self) -> None:
        return None


def phone_of(n: int) -> str:
    """The lab customer `n`'s phone number (a reserved-looking range, never dialled)."""
    return f"+86139{n % 100_000_000:08d}"


def lab_notices(service: PaymentService, clock: Clock, inbox: LabInbox) -> CustomerNotices:
    """The shipped policy by SMS only, without quiet hours (a lab run is minutes long)."""
    policy = load_policy().model_copy(
        update={
            "quiet_hours": None,
            "channels": [ChannelName.SMS],
            "max_per_customer_per_hour": 100,
        }
    )
    return CustomerNotices(
        service.store,
        clock,
        service.ids,
        vault=service.pii,
        messages=service.classifier.messages,
        policy=policy,
        templates=Templates(),
        channels={ChannelName.SMS: inbox},
        checkout_deadline_s=service.settings.checkout_deadline_s,
    )


def _p(values: list[float], q: float) -> float:
    """Nearest-rank quantile, as lab/metrics.py computes the run's (which imports us)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def notice_figures(conn: Connection, payments: int, hold_s: float) -> dict[str, Any]:
    """Notices sent and dropped, per payment, and the p99 delay from the event that asked
    for one to its delivery, also without a failure notice's deliberate hold."""
    rows = notices_repo.deliveries(conn)
    sent = [(kind, at - event_at) for kind, status, event_at, at in rows if status == "sent" and at]
    delays = [d.total_seconds() for _, d in sent]
    held = [
        d - (hold_s if kind == NoticeKind.PAYMENT_FAILED else 0.0)
        for (kind, _), d in zip(sent, delays, strict=True)
    ]
    return {
        "notices_sent": len(sent),
        "notices_dropped": sum(1 for _, status, _, _ in rows if status == "dropped"),
        "notices_per_payment": round(len(sent) / payments, 4) if payments else 0.0,
        "p99_notice_delay_s": round(_p(delays, 0.99), 2) if delays else None,
        "p99_notice_delay_after_hold_s": round(_p(held, 0.99), 2) if held else None,
    }
