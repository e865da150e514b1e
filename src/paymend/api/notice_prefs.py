"""The merchant API for a customer's notice preferences: the channels they opted out of
(the notices skip them and try the next), and the WeChat openid that subscription
messages reach them at (the shop gets it when the customer subscribes)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from typing_extensions import TypedDict

from paymend.api.rendering import Authed, runtime_of
from paymend.api.shapes import doc
from paymend.observability import get_logger
from paymend.store import notice_prefs

router = APIRouter(prefix="/v1/customers", tags=["customers"])
log = get_logger("paymend.api.notice_prefs")
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
async def get_prefs(customer_id: CustomerId, request: Request, merchant: Authed) -> JSONResponse:
    runtime = runtime_of(request)
    vault = runtime.service.pii
    found = await runtime.store.run(
        lambda conn: notice_prefs.load(conn, vault, merchant.id, customer_id)
    )
    return JSONResponse(found.as_dict(customer_id))


@router.put(
    "/{customer_id}/notice-preferences",
    summary="Record a customer's opt-outs and WeChat openid",
    response_model=NoticePrefs,
)
async def put_prefs(
    customer_id: CustomerId, body: NoticePrefsIn, request: Request, merchant: Authed
) -> JSONResponse:
    runtime = runtime_of(request)
    vault, now = runtime.service.pii, runtime.clock.now()
    given = body.model_fields_set
    openid = body.wechat_openid if "wechat_openid" in given else notice_prefs.KEEP
    saved = await runtime.store.run(
        lambda conn: notice_prefs.save(
            conn, vault, merchant.id, customer_id, now, opt_out=body.opt_out, wechat_openid=openid
        )
    )
    log.info("notice_prefs_saved", merchant_id=merchant.id, opt_out=sorted(saved.opt_out))
    return JSONResponse(saved.as_dict(customer_id))
