"""The ops API for incidents: the case library, one incident with its timeline, and the
operators' two steps, acknowledging the alert and reviewing the incident (admin key)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, StringConstraints

from paymend.api.ops import Admin, Name, Text
from paymend.engine.incidents import REVIEW_TEXT_MAX
from paymend.engine.runtime import Runtime

router = APIRouter(prefix="/v1/ops/incidents", tags=["ops"])
ReviewText = Annotated[
    str, StringConstraints(min_length=1, max_length=REVIEW_TEXT_MAX, strip_whitespace=True)
]


class AcknowledgeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    actor: Name
    reason: Text


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    actor: Name
    cause: ReviewText
    resolution: ReviewText
    lessons: ReviewText


@router.get("", summary="The case library: incidents, newest first")
async def list_incidents(
    request: Request,
    _: Admin,
    q: Annotated[
        str | None,
        Query(max_length=200, description="words that must all appear (case-insensitive)"),
    ] = None,
    status: Literal["open", "resolved"] | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> JSONResponse:
    runtime: Runtime = request.app.state.runtime
    found = await runtime.incidents.search(q, status, limit)
    return JSONResponse({"object": "list", "data": [i.as_dict() for i in found]})


@router.get("/{incident_id}", summary="One incident with its timeline")
async def get_incident(incident_id: str, request: Request, _: Admin) -> JSONResponse:
    runtime: Runtime = request.app.state.runtime
    incident = await runtime.incidents.get(incident_id)
    return JSONResponse(incident.as_dict())


@router.post("/{incident_id}/acknowledge", summary="Acknowledge the alert: someone is on it")
async def acknowledge(
    incident_id: str, body: AcknowledgeIn, request: Request, _: Admin
) -> JSONResponse:
    runtime: Runtime = request.app.state.runtime
    incident = await runtime.incidents.acknowledge(incident_id, body.actor, body.reason)
    return JSONResponse(incident.as_dict())


@router.post("/{incident_id}/review", summary="Review a resolved incident: cause, fix, lessons")
async def review(incident_id: str, body: ReviewIn, request: Request, _: Admin) -> JSONResponse:
    runtime: Runtime = request.app.state.runtime
    incident = await runtime.incidents.review(
        incident_id, body.cause, body.resolution, body.lessons, body.actor
    )
    return JSONResponse(incident.as_dict())
