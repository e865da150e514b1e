"""The ops API for incidents: the case library, one incident with its timeline, and the
operators' two steps, acknowledging the alert and reviewing the incident (the ops role;
reading needs only viewer). The operator is the one the key belongs to."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Query, Request
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from paymend.api import ops_shapes as shapes
from paymend.api.auth import Ops, Viewer
from paymend.api.checked import checked_router
from paymend.api.ops import Text, needs, one_line, text_pattern
from paymend.api.ops_views import incident_json, incident_summary
from paymend.api.responses import errors
from paymend.domain.printable import unprintable
from paymend.engine.incidents import FOLLOW_UP_MAX, MAX_FOLLOW_UPS, REVIEW_TEXT_MAX
from paymend.engine.runtime import Runtime

router = checked_router(prefix="/v1/ops/incidents", tags=["ops"])
NOT_FOUND = (404, ["incident_not_found"])


def _paragraphs(text: str) -> str:
    bad = unprintable(text, multiline=True)
    if bad is not None:
        raise ValueError(f"holds the control character {bad}")
    return text


ReviewText = Annotated[
    str,
    StringConstraints(min_length=1, max_length=REVIEW_TEXT_MAX, strip_whitespace=True),
    AfterValidator(_paragraphs),
    Field(json_schema_extra=lambda schema: schema.update(pattern=text_pattern(multiline=True))),
]


class AcknowledgeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Text


FollowUp = Annotated[
    str,
    StringConstraints(min_length=1, max_length=FOLLOW_UP_MAX, strip_whitespace=True),
    AfterValidator(one_line),
    Field(json_schema_extra=lambda schema: schema.update(pattern=text_pattern())),
]


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cause: ReviewText
    resolution: ReviewText
    lessons: ReviewText
    # the tasks the review leaves, one line each (an owner and a date belong in them)
    follow_ups: list[FollowUp] = Field(default_factory=list, max_length=MAX_FOLLOW_UPS)


@router.get(
    "",
    summary="The case library: incidents, newest first",
    description=needs("viewer"),
    response_model=shapes.IncidentList,
)
async def list_incidents(
    request: Request,
    _: Viewer,
    q: Annotated[
        str | None,
        Query(max_length=200, description="words that must all appear (case-insensitive)"),
    ] = None,
    status: Literal["open", "resolved"] | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> JSONResponse:
    runtime: Runtime = request.app.state.runtime
    found = await runtime.incidents.search(q, status, limit)
    data = [incident_summary(i) for i in found]
    return JSONResponse(shapes.IncidentList(object="list", data=data))


@router.get(
    "/{incident_id}",
    summary="One incident with its timeline",
    description=needs("viewer"),
    response_model=shapes.Incident,
    responses=errors(NOT_FOUND),
)
async def get_incident(incident_id: str, request: Request, _: Viewer) -> JSONResponse:
    runtime: Runtime = request.app.state.runtime
    incident = await runtime.incidents.get(incident_id)
    return JSONResponse(incident_json(incident))


@router.post(
    "/{incident_id}/acknowledge",
    summary="Acknowledge the alert: someone is on it",
    description=needs("ops"),
    response_model=shapes.Incident,
    responses=errors(NOT_FOUND, (409, ["incident_already_acknowledged"])),
)
async def acknowledge(
    incident_id: str, body: AcknowledgeIn, request: Request, who: Ops
) -> JSONResponse:
    runtime: Runtime = request.app.state.runtime
    incident = await runtime.incidents.acknowledge(incident_id, who.actor, body.reason)
    return JSONResponse(incident_json(incident))


@router.post(
    "/{incident_id}/review",
    summary="Review a resolved incident: cause, fix, lessons, follow-ups",
    description=needs("ops"),
    response_model=shapes.Incident,
    responses=errors(NOT_FOUND, (409, ["incident_open"])),
)
async def review(incident_id: str, body: ReviewIn, request: Request, who: Ops) -> JSONResponse:
    runtime: Runtime = request.app.state.runtime
    incident = await runtime.incidents.review(
        incident_id, body.cause, body.resolution, body.lessons, who.actor, body.follow_ups
    )
    return JSONResponse(incident_json(incident))
