"""The ops API: routing controls and the audit log, for operators (admin key)."""

from __future__ import annotations

import hmac
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from paymend.api.auth import Unauthenticated
from paymend.api.views import payment_json
from paymend.domain.errors import PaymendError
from paymend.engine import review
from paymend.engine.payments import PaymentView
from paymend.engine.runtime import Runtime
from paymend.store import controls as repo
from paymend.store import payments as payment_repo

router = APIRouter(prefix="/v1/ops", tags=["ops"])
Text = Annotated[str, StringConstraints(min_length=1, max_length=500, strip_whitespace=True)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]


class Disabled(PaymendError):
    status = 503
    type = "api_error"


async def admin(request: Request) -> None:
    runtime: Runtime = request.app.state.runtime
    key = runtime.settings.admin_key
    if not key:
        raise Disabled("ops_api_disabled", "set PAYMEND_ADMIN_KEY to use the ops API")
    given = request.headers.get("authorization", "").partition(" ")[2].strip()
    if not hmac.compare_digest(given.encode(), key.encode()):
        raise Unauthenticated("admin_key_invalid", "the ops API needs the admin key")


Admin = Annotated[None, Depends(admin)]


class ControlIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["pause", "force_route", "hold"]
    scope: Literal["channel", "bank", "region"]
    value: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    method: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z_]{1,31}$")] | None = None
    amount_above: Annotated[int, Field(ge=0, le=10**15)] | None = None  # hold: minor units
    reason: Text
    actor: Name


class EndIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Text
    actor: Name


@router.get("/controls", summary="Active routing controls")
async def list_controls(request: Request, _: Admin) -> JSONResponse:
    runtime: Runtime = request.app.state.runtime
    active = await runtime.store.run(repo.active)
    return JSONResponse({"object": "list", "data": [c.as_dict() for c in active]})


@router.post("/controls", status_code=201, summary="Pause a channel, bank or region; force a route")
async def add_control(body: ControlIn, request: Request, _: Admin) -> JSONResponse:
    runtime: Runtime = request.app.state.runtime
    control = await runtime.service.controls.set(
        body.kind,
        body.scope,
        body.value,
        body.method,
        body.reason,
        body.actor,
        runtime.providers,
        body.amount_above,
    )
    return JSONResponse(control.as_dict(), status_code=201)


@router.get("/payments/held", summary="Payments held for manual review, oldest first")
async def held_payments(
    request: Request, _: Admin, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> JSONResponse:
    runtime: Runtime = request.app.state.runtime
    found = await runtime.store.run(lambda conn: payment_repo.held(conn, limit))
    data = [payment_json(PaymentView(p, [], [])) for p in found]
    return JSONResponse({"object": "list", "data": data})


@router.post("/payments/{payment_id}/release", summary="Release a held payment: charge it now")
async def release_payment(payment_id: str, body: EndIn, request: Request, _: Admin) -> JSONResponse:
    runtime: Runtime = request.app.state.runtime
    view = await review.release(runtime.service, payment_id, body.actor, body.reason)
    return JSONResponse(payment_json(view))


@router.post("/payments/{payment_id}/reject", summary="Reject a held payment without charging")
async def reject_payment(payment_id: str, body: EndIn, request: Request, _: Admin) -> JSONResponse:
    runtime: Runtime = request.app.state.runtime
    view = await review.reject(runtime.service, payment_id, body.actor, body.reason)
    return JSONResponse(payment_json(view))


@router.post("/controls/{control_id}/end", summary="Resume: end a control")
async def end_control(control_id: str, body: EndIn, request: Request, _: Admin) -> JSONResponse:
    runtime: Runtime = request.app.state.runtime
    ended = await runtime.service.controls.end(control_id, body.reason, body.actor)
    return JSONResponse(ended.as_dict())


@router.get("/audit", summary="The audit log, newest first")
async def audit(
    request: Request, _: Admin, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> JSONResponse:
    runtime: Runtime = request.app.state.runtime
    entries = await runtime.store.run(lambda conn: repo.audit_entries(conn, limit))
    return JSONResponse({"object": "list", "data": entries})
