"""The ops API: routing controls and the audit log, for operators (admin key)."""

from __future__ import annotations

import hmac
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, StringConstraints

from paymend.api.auth import Unauthenticated
from paymend.domain.errors import PaymendError
from paymend.engine.runtime import Runtime
from paymend.store import controls as repo

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

    kind: Literal["pause", "force_route"]
    scope: Literal["channel", "bank", "region"]
    value: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    method: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z_]{1,31}$")] | None = None
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
    )
    return JSONResponse(control.as_dict(), status_code=201)


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
