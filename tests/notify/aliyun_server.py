"""A local stand-in for Aliyun's SMS API: a real HTTP server that takes `SendSms` as the
SDK sends it and answers as Aliyun documents (SendSms reference and the API error codes:
help.aliyun.com/zh/sms/developer-reference/api-dysmsapi-2017-05-25-sendsms,
help.aliyun.com/zh/sms/support/api-error-codes): HTTP 200 with `Code` `OK` and a `BizId`,
or 200 with `isv.MOBILE_NUMBER_ILLEGAL` for a number that cannot receive SMS, or
`isv.BUSINESS_LIMIT_CONTROL` when a number got too many messages."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests import local_server

ILLEGAL = "+8610000000000"  # answered isv.MOBILE_NUMBER_ILLEGAL


class AliyunSms:
    def __init__(self, limited: int = 0) -> None:
        self.limited = limited  # the first N sends are refused as over the rate limit
        self.received: list[dict[str, Any]] = []  # every SendSms, as sent
        self.delivered: list[dict[str, Any]] = []

    async def endpoint(self, request: Request) -> JSONResponse:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        form |= dict(request.query_params)
        self.received.append(form | {"authorization": request.headers.get("authorization")})
        rid = str(uuid.uuid4()).upper()
        # the SDK signs with ACS3-HMAC-SHA256: action and signature in headers
        action = request.headers.get("x-acs-action", form.get("Action"))
        signed = "ACS3-HMAC-SHA256" in request.headers.get("authorization", "")
        if action != "SendSms" or not (signed or "Signature" in form):
            return JSONResponse({"Code": "MissingParameter", "RequestId": rid}, 400)
        if form.get("PhoneNumbers") == ILLEGAL:
            body = {"Code": "isv.MOBILE_NUMBER_ILLEGAL", "Message": "非法手机号"}
            return JSONResponse(body | {"RequestId": rid})
        if self.limited > 0:
            self.limited -= 1
            body = {"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "触发号码天级流控Permits:10"}
            return JSONResponse(body | {"RequestId": rid})
        form["authorization"] = request.headers.get("authorization", "")
        self.delivered.append(form | {"params": json.loads(form.get("TemplateParam", "{}"))})
        return JSONResponse({"Code": "OK", "Message": "OK", "BizId": rid[:20], "RequestId": rid})


@contextmanager
def serving(sms: AliyunSms) -> Iterator[str]:
    """The server on a free port of 127.0.0.1; yields its endpoint (host:port)."""
    with local_server.serving(Route("/", sms.endpoint, methods=["POST", "GET"])) as port:
        yield f"127.0.0.1:{port}"
