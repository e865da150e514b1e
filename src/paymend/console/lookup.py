"""Payments pages for customer service (the support role): the search and one payment's
timeline. Every read of customers' payments is audit-logged as the ops API's are
(engine/access.py note_lookup): who saw which."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from paymend.console import i18n
from paymend.console.payments import customer_told, read_story, timeline
from paymend.console.web import PREFIX, gate, locale_of, render, runtime_of
from paymend.domain.errors import NotFound, PaymendError
from paymend.domain.payment import PaymentStatus
from paymend.domain.roles import Role
from paymend.engine import listing
from paymend.store import merchants
from paymend.store.listing import PaymentQuery

router = APIRouter(prefix=PREFIX, include_in_schema=False)
PAGE = 50
Field = Annotated[str | None, Query(max_length=128)]


def _instant(text: str | None) -> datetime | None:
    """A `datetime-local` field's value, read as UTC; None when empty or malformed."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@router.get("/payments")
async def search(
    request: Request,
    merchant: Field = None,
    payment_id: Field = None,
    order_id: Field = None,
    status: Field = None,
    channel: Field = None,
    failure_code: Field = None,
    created_gte: Field = None,
    created_lt: Field = None,
    after: Field = None,
) -> Response:
    checked = await gate(request, Role.SUPPORT)
    if checked.refusal or checked.session is None:
        return checked.refusal or Response(status_code=401)
    session, runtime = checked.session, runtime_of(request)
    if payment_id:
        return RedirectResponse(f"{PREFIX}/payments/{payment_id.strip()}", status_code=303)
    shops = await runtime.store.run(merchants.every)
    chosen = next((m for m in shops if merchant in (m.id, m.name)), shops[0] if shops else None)
    statuses = [s.value for s in PaymentStatus]
    form = {
        "merchant": chosen.id if chosen else "",
        "order_id": order_id or "",
        "status": status if status in statuses else "",
        "channel": channel or "",
        "failure_code": failure_code or "",
        "created_gte": created_gte or "",
        "created_lt": created_lt or "",
    }
    results, has_more, error = [], False, None
    if chosen is not None:
        query = PaymentQuery(
            order_id=order_id or None,
            statuses=(PaymentStatus(form["status"]),) if form["status"] else (),
            created_gte=_instant(created_gte),
            created_lt=_instant(created_lt),
            channel=channel or None,
            failure_code=failure_code or None,
        )
        try:
            page = await listing.payments(runtime.store, chosen.id, query, PAGE, after or None)
        except PaymendError as exc:
            error = exc.message
        else:
            results, has_more = page.items, page.has_more
            if results:
                target = f"search:{chosen.id}"
                ids: list[str] = [v.payment.id for v in results]
                await runtime.access.note_lookup(session.operator.actor, target, ids)
    return render(
        request,
        "payments.html",
        session,
        shops=shops,
        form=form,
        statuses=statuses,
        channels=sorted(runtime.providers),
        results=results,
        has_more=has_more,
        error=error,
    )


@router.get("/payments/{payment_id}")
async def payment(request: Request, payment_id: str) -> Response:
    checked = await gate(request, Role.SUPPORT)
    if checked.refusal or checked.session is None:
        return checked.refusal or Response(status_code=401)
    session, runtime = checked.session, runtime_of(request)
    locale = locale_of(request)
    try:
        story = await runtime.store.run(read_story(runtime, payment_id))
    except NotFound:
        message = i18n.translate(locale, "payment.not_found", id=payment_id)
        return render(request, "error.html", session, 404, message=message)
    await runtime.access.note_lookup(session.operator.actor, f"payment:{payment_id}", [payment_id])
    shop = await runtime.store.run(lambda c: merchants.get(c, story.view.payment.merchant_id))
    support = shop.settings.get("support_contact")
    told = customer_told(story.view, runtime.service.classifier, support)

    def t(key: str, /, **values: object) -> str:
        return i18n.translate(locale, key, **values)

    return render(
        request,
        "payment.html",
        session,
        view=story.view,
        p=story.view.payment,
        merchant=shop,
        told=told,
        entries=timeline(story, t),
        notices=[i for i, _ in story.notices],
        notifies=runtime_of(request).notices is not None,  # a notice can reach the customer
        notice=(request.query_params.get("done") or "")[:200] or None,
    )
