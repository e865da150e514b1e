"""The pain-point report for the team: what customers said on the status page, in the
help centre and through the merchant's checkout, grouped by failure code, channel,
method, bank and step (engine/feedback.py, as `paymend feedback report`). Its texts are
masked as stored; support and above read it, from the console's menu. Its words are the
console's (`feedback.*` in words.py), in English and 简体中文."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from paymend.console.web import PREFIX, gate, render, runtime_of
from paymend.domain.roles import Role
from paymend.engine import feedback

router = APIRouter(prefix=PREFIX, include_in_schema=False)


@router.get("/feedback")
async def pain_points(request: Request, days: Annotated[int, Query(ge=1, le=366)] = 7) -> Response:
    checked = await gate(request, Role.SUPPORT)
    if checked.refusal:
        return checked.refusal
    runtime = runtime_of(request)
    found = await feedback.report(runtime.store, runtime.clock.now(), days)
    return render(request, "feedback.html", checked.session, report=found, days=days)
