"""Feedback from the merchant's own checkout: `POST /v1/feedback` (docs/customers.md).
What a customer says about a payment (a rating, preset reasons, a few words), stored
with its free text masked for personal data (engine/feedback.py), counted in the
pain-point report with what the status page and the help centre collect."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from typing_extensions import TypedDict

from paymend.api.checked import checked_router
from paymend.api.rendering import PAYMENT_NOT_FOUND, Authed, runtime_of
from paymend.api.responses import errors
from paymend.api.shapes import Timestamp, doc
from paymend.engine import feedback

router = checked_router(prefix="/v1", tags=["feedback"])
Reason = Literal[feedback.REASONS]  # type: ignore[valid-type]


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    payment_id: Annotated[
        str | None, Field(None, max_length=40, description="the payment it is about")
    ]
    rating: Annotated[int | None, Field(None, ge=1, le=5, description="1 (bad) to 5 (good)")]
    reasons: Annotated[
        list[Reason],
        Field(default_factory=list, max_length=7, json_schema_extra={"uniqueItems": True}),
    ]
    text: Annotated[
        str, Field("", max_length=feedback.MAX_TEXT, description="masked before it is stored")
    ]
    step: Annotated[
        str,
        StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$"),
        Field("checkout", description="where in your checkout it was given"),
    ]
    locale: Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})?$")] = "en"


class Feedback(TypedDict):
    id: Annotated[str, doc("`fb_…`")]
    object: Literal["feedback"]
    payment_id: str | None
    rating: int | None
    reasons: list[str]
    text: Annotated[str, doc("as stored: card numbers, emails and long numbers masked")]
    step: str
    created_at: Timestamp


@router.post(
    "/feedback",
    status_code=201,
    summary="Record a customer's feedback from your checkout",
    description="A rating, preset reasons and free text (masked for personal data before "
    "it is stored; card numbers are refused). Grouped with the feedback of the status page "
    "and the help centre in `paymend feedback report`.",
    response_model=Feedback,
    responses=errors(PAYMENT_NOT_FOUND, (400, ["feedback_empty", "feedback_text_invalid"])),
)
async def give_feedback(body: FeedbackIn, request: Request, merchant: Authed) -> JSONResponse:
    service = runtime_of(request).service
    view = await service.get(body.payment_id, merchant.id) if body.payment_id else None
    said = feedback.Said(
        source="api",
        step=body.step,
        rating=body.rating,
        reasons=tuple(body.reasons),
        text=body.text,
        locale=body.locale,
    )
    row = await feedback.record(service, said, view, merchant_id=merchant.id)
    answer: Feedback = {
        "id": row["id"],
        "object": "feedback",
        "payment_id": row["payment_id"],
        "rating": row["rating"],
        "reasons": row["reasons"],
        "text": row["text"],
        "step": row["step"],
        "created_at": row["created_at"].isoformat().replace("+00:00", "Z"),
    }
    return JSONResponse(answer, status_code=201)
