"""Actions on a payment, each confirmed on its form, limited by role and audit-logged as
the operator: a refund (full or partial, the support role) through the engine's refunds
as the merchant API makes them (engine/refunds.py); releasing or rejecting a held
payment (the ops role) through engine/review.py, as the ops API does; a compensation
(the support role) within the merchant's cap (engine/compensations.py)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from paymend.console.web import PREFIX, Action, action_form
from paymend.domain.compensation import CompensationKind
from paymend.domain.errors import PaymendError
from paymend.domain.roles import Role
from paymend.engine import compensations, review
from paymend.engine.audit import Audited, audited
from paymend.engine.commands import RefundCommand
from paymend.store import merchants
from paymend.store import payments as repo
from paymend.store.database import Connection

router = APIRouter(prefix=PREFIX, include_in_schema=False)
REFUND_ROLE = Role.SUPPORT  # customer service refunds; the amount is bounded by the charge


def _amount(raw: str) -> int | None:
    """A positive whole number of minor units, or None."""
    return int(raw) if raw.isascii() and raw.isdigit() and 0 < int(raw) <= 10**15 else None


def _confirmed(action: Action) -> str | Response:
    """The reason on a form that moves money (a refund, a compensation), which must also
    carry its confirmation box; else the error page."""
    reason = action.reason()
    if reason is None:
        return action.fail("form.reason_required")
    if action.form.get("confirm") != "yes":
        return action.fail("form.confirm_required")
    return reason


@router.post("/payments/{payment_id}/refund")
async def refund(request: Request, payment_id: str) -> Response:
    action = await action_form(request, REFUND_ROLE)
    if isinstance(action, Response):
        return action
    runtime, form = action.runtime, action.form
    reason = _confirmed(action)
    if isinstance(reason, Response):
        return reason
    raw = form.get("amount", "").strip()
    amount = _amount(raw) if raw else None
    if raw and amount is None:
        return action.fail("form.amount_invalid")
    try:
        merchant_id = (
            await runtime.store.run(lambda c: repo.get_payment(c, payment_id))
        ).merchant_id
        made = await runtime.service.refund(RefundCommand(merchant_id, payment_id, amount, reason))
    except PaymendError as exc:
        return action.error(exc)
    details = {"refund_id": made.id, "amount": made.amount.minor, "currency": made.amount.currency}

    def note(_conn: Connection) -> Audited[None]:
        return Audited(None, "payment.refund", f"payment:{payment_id}", details)

    await audited(runtime.store, runtime.clock.now(), action.session.operator.actor, reason, note)
    return action.done(
        f"/payments/{payment_id}", "payment.refund_done", id=made.id, status=made.status.value
    )


@router.post("/payments/{payment_id}/compensate")
async def compensate(request: Request, payment_id: str) -> Response:
    """Grant a coupon or credit (the support role) within the merchant's cap, through
    engine/compensations.py: stored with the operator as its grantor, audit-logged."""
    action = await action_form(request, Role.SUPPORT)
    if isinstance(action, Response):
        return action
    runtime, form = action.runtime, action.form
    reason = _confirmed(action)
    if isinstance(reason, Response):
        return reason
    amount = _amount(form.get("amount", "").strip())
    if amount is None:
        return action.fail("form.amount_invalid")
    kind = form.get("kind", "")
    if kind not in {k.value for k in CompensationKind}:
        return action.fail("form.fields_required")
    try:
        payment = await runtime.store.run(lambda c: repo.get_payment(c, payment_id))
        shop = await runtime.store.run(lambda c: merchants.get(c, payment.merchant_id))
        made = await compensations.grant(
            runtime.service,
            shop,
            payment_id,
            CompensationKind(kind),
            amount,
            reason,
            action.session.operator.actor,
        )
    except PaymendError as exc:
        return action.error(exc)
    return action.done(f"/payments/{payment_id}", "payment.compensate_done", id=made.id)


@router.post("/payments/{payment_id}/{decision}")
async def decide(request: Request, payment_id: str, decision: str) -> Response:
    """Release (charge now) or reject a held payment, with a reason."""
    if decision not in ("release", "reject"):
        return Response("not found", status_code=404, media_type="text/plain")
    action = await action_form(request, Role.OPS)
    if isinstance(action, Response):
        return action
    reason = action.reason()
    if reason is None:
        return action.fail("form.reason_required")
    act = review.release if decision == "release" else review.reject
    try:
        view = await act(action.runtime.service, payment_id, action.session.operator.actor, reason)
    except PaymendError as exc:
        return action.error(exc)
    return action.done(
        f"/payments/{payment_id}", f"payment.{decision}_done", status=view.payment.status.value
    )
