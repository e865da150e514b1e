"""The live health page (the console's first page), its panel that htmx refreshes every
few seconds, and the chart's JSON (the controls it offers: console/controls.py)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from paymend.console.controls import ENDS_IN
from paymend.console.health import health_page, series
from paymend.console.hours import channel_hours
from paymend.console.web import NO_STORE, PREFIX, gate, render, runtime_of
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
        ends_in=ENDS_IN,
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
