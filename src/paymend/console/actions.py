"""Actions on a payment, each confirmed on its form, limited by role and audit-logged as
the operator: a refund (full or partial, the support role) through the engine's refunds
as the merchant API makes them (engine/refunds.py); releasing or rejecting a held
payment (the ops role) through engine/review.py, as the ops API does; a compensation
(the support role) within the merchant's cap (engine/compensations.py)."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from paymend.console import i18n
from paymend.console.web import (
    PREFIX,
    FormRefused,
    csrf_ok,
    csrf_refused,
    gate,
    locale_of,
    read_form,
    render,
    runtime_of,
)
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


@router.post("/payments/{payment_id}/refund")
async def refund(request: Request, payment_id: str) -> Response:
    checked = await gate(request, REFUND_ROLE)
    if checked.refusal or checked.session is None:
        return checked.refusal or Response(status_code=401)
    session, runtime, locale = checked.session, runtime_of(request), locale_of(request)
    try:
        form = await read_form(request)
    except FormRefused as refused:
        return render(request, "error.html", session, refused.status, message=refused.message)
    if not csrf_ok(session, form):
        return csrf_refused(request, session)

    def fail(key: str, status: int = 400) -> Response:
        return render(request, "error.html", session, status, message=i18n.translate(locale, key))

    reason = form.get("reason", "").strip()
    if not reason or len(reason) > 500:
        return fail("form.reason_required")
    if form.get("confirm") != "yes":
        return fail("form.confirm_required")
    raw = form.get("amount", "").strip()
    if raw and not (raw.isascii() and raw.isdigit() and 0 < int(raw) <= 10**15):
        return fail("form.amount_invalid")
    amount = int(raw) if raw else None
    try:
        merchant_id = (
            await runtime.store.run(lambda c: repo.get_payment(c, payment_id))
        ).merchant_id
        made = await runtime.service.refund(RefundCommand(merchant_id, payment_id, amount, reason))
    except PaymendError as exc:
        return render(request, "error.html", session, exc.status, message=exc.message)
    details = {"refund_id": made.id, "amount": made.amount.minor, "currency": made.amount.currency}

    def note(_conn: Connection) -> Audited[None]:
        return Audited(None, "payment.refund", f"payment:{payment_id}", details)

    await audited(runtime.store, runtime.clock.now(), session.operator.actor, reason, note)
    done = i18n.translate(locale, "payment.refund_done", id=made.id, status=made.status.value)
    return RedirectResponse(f"{PREFIX}/payments/{payment_id}?done={quote(done)}", status_code=303)


@router.post("/payments/{payment_id}/compensate")
async def compensate(request: Request, payment_id: str) -> Response:
    """Grant a coupon or credit (the support role) within the merchant's cap, through
    engine/compensations.py: stored with the operator as its grantor, audit-logged."""
    checked = await gate(request, Role.SUPPORT)
    if checked.refusal or checked.session is None:
        return checked.refusal or Response(status_code=401)
    session, runtime, locale = checked.session, runtime_of(request), locale_of(request)
    try:
        form = await read_form(request)
    except FormRefused as refused:
        return render(request, "error.html", session, refused.status, message=refused.message)
    if not csrf_ok(session, form):
        return csrf_refused(request, session)

    def fail(key: str) -> Response:
        return render(request, "error.html", session, 400, message=i18n.translate(locale, key))

    reason, raw = form.get("reason", "").strip(), form.get("amount", "").strip()
    if not reason or len(reason) > 500:
        return fail("form.reason_required")
    if form.get("confirm") != "yes":
        return fail("form.confirm_required")
    if not (raw.isascii() and raw.isdigit() and 0 < int(raw) <= 10**15):
        return fail("form.amount_invalid")
    kind = form.get("kind", "")
    if kind not in {k.value for k in CompensationKind}:
        return fail("form.fields_required")
    try:
        payment = await runtime.store.run(lambda c: repo.get_payment(c, payment_id))
        shop = await runtime.store.run(lambda c: merchants.get(c, payment.merchant_id))
        made = await compensations.grant(
            runtime.service,
            shop,
            payment_id,
            CompensationKind(kind),
            int(raw),
            reason,
            session.operator.actor,
        )
    except PaymendError as exc:
        return render(request, "error.html", session, exc.status, message=exc.message)
    done = i18n.translate(locale, "payment.compensate_done", id=made.id)
    return RedirectResponse(f"{PREFIX}/payments/{payment_id}?done={quote(done)}", status_code=303)


@router.post("/payments/{payment_id}/{decision}")
async def decide(request: Request, payment_id: str, decision: str) -> Response:
    """Release (charge now) or reject a held payment, with a reason."""
    if decision not in ("release", "reject"):
        return Response("not found", status_code=404, media_type="text/plain")
    checked = await gate(request, Role.OPS)
    if checked.refusal or checked.session is None:
        return checked.refusal or Response(status_code=401)
    session, runtime, locale = checked.session, runtime_of(request), locale_of(request)
    try:
        form = await read_form(request)
    except FormRefused as refused:
        return render(request, "error.html", session, refused.status, message=refused.message)
    if not csrf_ok(session, form):
        return csrf_refused(request, session)
    reason = form.get("reason", "").strip()
    if not reason or len(reason) > 500:
        message = i18n.translate(locale, "form.reason_required")
        return render(request, "error.html", session, 400, message=message)
    act = review.release if decision == "release" else review.reject
    try:
        view = await act(runtime.service, payment_id, session.operator.actor, reason)
    except PaymendError as exc:
        return render(request, "error.html", session, exc.status, message=exc.message)
    done = i18n.translate(locale, f"payment.{decision}_done", status=view.payment.status.value)
    return RedirectResponse(f"{PREFIX}/payments/{payment_id}?done={quote(done)}", status_code=303)
