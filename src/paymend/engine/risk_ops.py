"""What people do with risk control: read a payment's decision, keep the allow and block
lists (ops, audit-logged), and report a chargeback or confirmed fraud on a payment (the
shop), which lowers the customer's and the card's scores and, for fraud, blocks the
card, device and email it came from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from paymend.domain.errors import InvalidInput, NotFound
from paymend.domain.masking import mask_email
from paymend.engine.audit import Audited, audited
from paymend.engine.payments import PaymentService
from paymend.risk.features import email_key
from paymend.risk.model import ListAction, ListKind
from paymend.store import payments as payment_repo
from paymend.store import risk as repo
from paymend.store.database import Connection

REPORT_KINDS = ("chargeback", "fraud")
SHOWN_MAX = 128  # risk_lists.shown


def _normal(kind: ListKind, value: str) -> tuple[str, str]:
    """(the key the list holds, what ops are shown)."""
    clean = value.strip()
    if not clean:
        raise InvalidInput("risk_list_value_invalid", "value must not be empty", param="value")
    if kind is ListKind.EMAIL:
        if "@" not in clean:
            raise InvalidInput(
                "risk_list_value_invalid", "an email address such as a@example.com", param="value"
            )
        shown = mask_email(clean.lower()) or ""
        # masking adds characters: a long address is shown cut, its key stays whole
        return email_key(clean), shown if len(shown) <= SHOWN_MAX else shown[: SHOWN_MAX - 1] + "…"
    return clean, clean


async def decision(
    service: PaymentService, payment_id: str, merchant_id: str | None = None
) -> dict[str, Any]:
    """The payment's stored decision (404 for another merchant's payment or none)."""

    def read(conn: Connection) -> dict[str, Any]:
        payment_repo.get_payment(conn, payment_id, merchant_id)  # payment_not_found
        found = repo.decision(conn, payment_id)
        if found is None:
            raise NotFound(
                "risk_decision_not_found",
                f"payment {payment_id} was created without a risk decision",
            )
        return found

    return await service.store.run(read)


async def add_entry(
    service: PaymentService, kind: str, value: str, action: str, reason: str, actor: str
) -> dict[str, Any]:
    """Put `value` on the `kind` list (card, email, device, ip) as allow or block."""
    kind, action = ListKind(kind), ListAction(action)
    key, shown = _normal(kind, value)
    now = service.clock.now()
    row = {
        "kind": kind.value,
        "value": key,
        "shown": shown,
        "action": action.value,
        "reason": reason,
        "created_by": actor,
        "created_at": now,
    }

    def write(conn: Connection) -> Audited[dict[str, Any]]:
        added = repo.add_entry(conn, row)
        details = {"kind": kind.value, "value": shown, "action": action.value}
        return Audited(added, "risk.list_add", f"risk_list:{added['id']}", details)

    return await audited(service.store, now, actor, reason, write)


async def remove_entry(
    service: PaymentService, entry_id: int, reason: str, actor: str
) -> dict[str, Any]:
    now = service.clock.now()

    def write(conn: Connection) -> Audited[dict[str, Any]]:
        gone = repo.remove_entry(conn, entry_id)
        details = {"kind": gone["kind"], "value": gone["shown"], "action": gone["action"]}
        return Audited(gone, "risk.list_remove", f"risk_list:{entry_id}", details)

    return await audited(service.store, now, actor, reason, write)


async def shadow(service: PaymentService, since: datetime | None = None) -> list[dict[str, Any]]:
    """What shadow rules would have decided, counted from the stored decisions (every
    process's), beside what was enforced."""
    return await service.store.run(lambda conn: repo.shadow_counts(conn, since))


async def entries(service: PaymentService, kind: str | None = None) -> list[dict[str, Any]]:
    return await service.store.run(lambda conn: repo.entries(conn, kind))


@dataclass(frozen=True, slots=True)
class Reported:
    payment_id: str
    kind: str
    new: bool  # False: this payment already had a report of this kind
    blocked: list[str]  # the list kinds the payment's card, device, email went on


async def report(
    service: PaymentService, payment_id: str, merchant_id: str, kind: str, reason: str
) -> Reported:
    """Record a chargeback or confirmed fraud on the merchant's payment, once per kind."""
    if kind not in REPORT_KINDS:
        raise InvalidInput("report_kind_invalid", "kind must be chargeback or fraud", param="kind")
    now = service.clock.now()
    actor = f"merchant:{merchant_id}"

    def write(conn: Connection) -> Audited[Reported]:
        payment = payment_repo.get_payment(conn, payment_id, merchant_id)
        found = repo.decision(conn, payment_id) or {}
        new = repo.report(
            conn,
            {
                "payment_id": payment.id,
                "merchant_id": merchant_id,
                "kind": kind,
                "customer_id": payment.customer.id or "",
                "card": found.get("card", ""),
                "reason": reason,
                "created_at": now,
            },
        )
        blocked: list[str] = []
        if new and kind == "fraud":
            for list_kind in (ListKind.CARD, ListKind.DEVICE, ListKind.EMAIL):
                value = found.get(list_kind.value, "")
                if value:
                    shown = (
                        payment.customer.email_masked or ""
                        if list_kind is ListKind.EMAIL
                        else value
                    )
                    repo.add_entry(
                        conn,
                        {
                            "kind": list_kind.value,
                            "value": value,
                            "shown": shown,
                            "action": ListAction.BLOCK.value,
                            "reason": f"fraud reported on {payment.id}: {reason}",
                            "created_by": actor,
                            "created_at": now,
                        },
                    )
                    blocked.append(list_kind.value)
        done = Reported(payment.id, kind, new, blocked)
        details = {"kind": kind, "blocked": blocked, "new": new}
        return Audited(done, "risk.report", f"payment:{payment.id}", details)

    return await audited(service.store, now, actor, reason, write)
