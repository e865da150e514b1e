"""The ops API for silences: no pages about matching incidents until a time (the ops
role to set or end one, viewer to list them). Each change is audit-logged with the
operator the key belongs to."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints
from typing_extensions import TypedDict

from paymend.api.auth import Ops, Viewer
from paymend.api.checked import checked_router
from paymend.api.ops import EndIn, Text, needs
from paymend.api.responses import errors
from paymend.api.shapes import Timestamp, doc
from paymend.engine.runtime import Runtime

router = checked_router(prefix="/v1/ops/silences", tags=["ops"])
Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]


class SilenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    playbook: Name | None = Field(None, description="incidents this playbook opened")
    channel: Name | None = Field(None, description="incidents whose scope is this channel")
    bank: Name | None = None
    region: Name | None = None
    until: AwareDatetime = Field(description="when pages resume; within 30 days")
    reason: Text


class Silence(TypedDict):
    """Pages held back for incidents matching every field set here, until `ends_at`."""

    id: Annotated[str, doc("`sil_…`")]
    object: Literal["silence"]
    playbook: str | None
    channel: str | None
    bank: str | None
    region: str | None
    reason: str
    created_by: Annotated[str, doc("`operator:<name>` or `cli:<user>`")]
    created_at: Timestamp
    ends_at: Timestamp
    ended_at: Annotated[Timestamp | None, doc("set when it was ended early")]
    ended_by: str | None


class SilenceList(TypedDict):
    object: Literal["list"]
    data: list[Silence]


@router.get(
    "",
    summary="Active silences of ops pages",
    description=needs("viewer"),
    response_model=SilenceList,
)
async def list_silences(request: Request, _: Viewer) -> JSONResponse:
    runtime: Runtime = request.app.state.runtime
    data = [s.as_dict() for s in await runtime.silences.active()]
    return JSONResponse({"object": "list", "data": data})


@router.post(
    "",
    status_code=201,
    summary="Silence ops pages about incidents of a playbook, channel, bank or region",
    description=needs("ops"),
    response_model=Silence,
    responses=errors((400, ["silence_invalid"])),
)
async def add_silence(body: SilenceIn, request: Request, who: Ops) -> JSONResponse:
    runtime: Runtime = request.app.state.runtime
    matchers = {"playbook": body.playbook, "channel": body.channel}
    matchers |= {"bank": body.bank, "region": body.region}
    until: datetime = body.until
    made = await runtime.silences.add(matchers, until, body.reason, who.actor)
    return JSONResponse(made.as_dict(), status_code=201)


@router.post(
    "/{silence_id}/end",
    summary="End a silence early: pages resume",
    description=needs("ops"),
    response_model=Silence,
    responses=errors((404, ["silence_not_found"]), (409, ["silence_ended"])),
)
async def end_silence(silence_id: str, body: EndIn, request: Request, who: Ops) -> JSONResponse:
    runtime: Runtime = request.app.state.runtime
    ended = await runtime.silences.end(silence_id, body.reason, who.actor)
    return JSONResponse(ended.as_dict())
