"""The merchant API for a customer's notice preferences: the channels they opted out of
(the notices skip them and try the next), and the WeChat openid that subscription
messages reach them at (the shop gets it when the customer subscribes)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from typing_extensions import TypedDict

from paymend.api.checked import checked_router
from paymend.api.rendering import Authed, runtime_of
from paymend.api.shapes import doc
from paymend.engine import notice_prefs

router = checked_router(prefix="/v1/customers", tags=["customers"])
NoticeChannel = Literal["sms", "wechat", "email"]
CustomerId = Annotated[str, Path(min_length=1, max_length=128)]


class NoticePrefsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    opt_out: list[NoticeChannel] | None = Field(
        None, max_length=3, description="every channel the customer opted out of; left out: kept"
    )
    wechat_openid: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{6,64}$")] | None = (
        Field(None, description="the customer's openid under the shop's app; null: forget it")
    )


class NoticePrefs(TypedDict):
    object: Literal["notice_preferences"]
    customer_id: str
    opt_out: list[str]
    wechat_openid: Annotated[str | None, doc("masked; null when none is stored")]


@router.get(
    "/{customer_id}/notice-preferences",
    summary="A customer's notice preferences",
    response_model=NoticePrefs,
)
async def get_notice_prefs(
    customer_id: CustomerId, request: Request, merchant: Authed
) -> JSONResponse:
    runtime = runtime_of(request)
    found = await notice_prefs.read(runtime.store, runtime.service.pii, merchant.id, customer_id)
    return JSONResponse(found.as_dict(customer_id))


@router.post(
    "/{customer_id}/notice-preferences",
    summary="Record a customer's opt-outs and WeChat openid",
    response_model=NoticePrefs,
)
async def record_notice_prefs(
    customer_id: CustomerId, body: NoticePrefsIn, request: Request, merchant: Authed
) -> JSONResponse:
    runtime = runtime_of(request)
    given = body.model_fields_set
    openid = body.wechat_openid if "wechat_openid" in given else notice_prefs.KEEP
    saved = await notice_prefs.record(
        runtime.store,
        runtime.service.pii,
        runtime.clock,
        merchant.id,
        customer_id,
        opt_out=body.opt_out,
        wechat_openid=openid,
    )
    return JSONResponse(saved.as_dict(customer_id))
