"""The live health page (the console's first page), its panel that htmx refreshes every
few seconds, the chart's JSON, and pausing and resuming through the controls engine."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from paymend.console import i18n
from paymend.console.health import health_page, series
from paymend.console.hours import channel_hours
from paymend.console.web import (
    NO_STORE,
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
from paymend.domain.errors import PaymendError
from paymend.domain.roles import Role

router = APIRouter(prefix=PREFIX, include_in_schema=False)
POLL_S = 5


@router.get("/health")
async def health(request: Request) -> Response:
    checked = await gate(request, Role.VIEWER)
    if checked.refusal:
        return checked.refusal
    page = await health_page(runtime_of(request))
    hours = await channel_hours(runtime_of(request))
    notice = request.query_params.get("done")
    return render(
        request,
        "health.html",
        checked.session,
        page=page,
        hours=hours,
        now=runtime_of(request).clock.now(),
        poll_s=POLL_S,
        notice=notice[:200] if notice else None,
    )


@router.get("/health/live")
async def health_live(request: Request) -> Response:
    """The panel alone, for htmx to swap in."""
    checked = await gate(request, Role.VIEWER)
    if checked.refusal:
        return checked.refusal
    page = await health_page(runtime_of(request))
    return render(
        request,
        "health_live.html",
        checked.session,
        page=page,
        now=runtime_of(request).clock.now(),
        poll_s=POLL_S,
    )


@router.get("/health/hours")
async def health_hours(request: Request) -> Response:
    """The last hours' panel alone, for htmx to swap in every minute."""
    checked = await gate(request, Role.VIEWER)
    if checked.refusal:
        return checked.refusal
    hours = await channel_hours(runtime_of(request))
    return render(request, "health_hours.html", checked.session, hours=hours)


@router.get("/health/series.json")
async def health_series(request: Request) -> Response:
    checked = await gate(request, Role.VIEWER)
    if checked.refusal:
        return checked.refusal
    return JSONResponse(series(runtime_of(request)), headers=NO_STORE)


@router.post("/controls")
async def pause(request: Request) -> Response:
    """Pause a channel, bank or region (the ops role), with a reason, audit-logged as
    the operator by the controls engine."""
    checked = await gate(request, Role.OPS)
    if checked.refusal or checked.session is None:
        return checked.refusal or Response(status_code=401)
    session = checked.session
    try:
        form = await read_form(request)
    except FormRefused as refused:
        return render(request, "error.html", session, refused.status, message=refused.message)
    if not csrf_ok(session, form):
        return csrf_refused(request, session)
    runtime = runtime_of(request)
    scope, value = form.get("scope", ""), form.get("value", "").strip()
    try:
        await runtime.service.controls.set(
            "pause",
            scope,
            value,
            form.get("method") or None,
            form.get("reason", "").strip(),
            session.operator.actor,
            runtime.known,
        )
    except PaymendError as exc:
        return render(request, "error.html", session, exc.status, message=exc.message)
    done = i18n.translate(locale_of(request), "control.done_pause", target=f"{scope}:{value}")
    return _back_to_health(done)


@router.post("/controls/{control_id}/end")
async def resume(request: Request, control_id: str) -> Response:
    checked = await gate(request, Role.OPS)
    if checked.refusal or checked.session is None:
        return checked.refusal or Response(status_code=401)
    session = checked.session
    try:
        form = await read_form(request)
    except FormRefused as refused:
        return render(request, "error.html", session, refused.status, message=refused.message)
    if not csrf_ok(session, form):
        return csrf_refused(request, session)
    runtime = runtime_of(request)
    reason = form.get("reason", "").strip()
    if not reason or len(reason) > 500:
        message = i18n.translate(locale_of(request), "form.reason_required")
        return render(request, "error.html", session, 400, message=message)
    try:
        ended = await runtime.service.controls.end(control_id, reason, session.operator.actor)
    except PaymendError as exc:
        return render(request, "error.html", session, exc.status, message=exc.message)
    target = f"{ended.scope}:{ended.value}"
    return _back_to_health(i18n.translate(locale_of(request), "control.done_end", target=target))


def _back_to_health(done: str) -> Response:
    return RedirectResponse(f"{PREFIX}/health?done={quote(done)}", status_code=303)
