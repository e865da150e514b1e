"""A local stand-in for Tencent Cloud's SMS API: a real HTTP server that takes `SendSms`
as the SDK sends it (JSON, TC3-HMAC-SHA256 signed) and answers as Tencent documents
(SendSms reference and error codes: cloud.tencent.com/document/product/382/55981,
/382/59177): a `SendStatusSet` entry per number, `Ok`, or
`InvalidParameterValue.IncorrectPhoneNumber`, or `LimitExceeded.PhoneNumberThirtySecondLimit`."""

from __future__ import annotations

import json
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

INCORRECT = "+8610000000000"


class TencentSms:
    def __init__(self, limited: int = 0) -> None:
        self.limited = limited
        self.delivered: list[dict[str, Any]] = []

    async def endpoint(self, request: Request) -> JSONResponse:
        body = json.loads(await request.body())
        rid = str(uuid.uuid4())
        action = request.headers.get("x-tc-action")
        if action != "SendSms" or "TC3-HMAC-SHA256" not in request.headers.get("authorization", ""):
            error = {"Code": "AuthFailure.SignatureFailure", "Message": "unsigned"}
            return JSONResponse({"Response": {"Error": error, "RequestId": rid}})
        (phone,) = body["PhoneNumberSet"]
        if phone == INCORRECT:
            code, text = "InvalidParameterValue.IncorrectPhoneNumber", "incorrect phone number"
        elif self.limited > 0:
            self.limited -= 1
            code, text = "LimitExceeded.PhoneNumberThirtySecondLimit", "30 second limit"
        else:
            code, text = "Ok", "send success"
            self.delivered.append(body | {"authorization": request.headers["authorization"]})
        status = {
            "SerialNo": rid,
            "PhoneNumber": phone,
            "Fee": 1 if code == "Ok" else 0,
            "SessionContext": body.get("SessionContext", ""),
            "Code": code,
            "Message": text,
            "IsoCode": "CN",
        }
        return JSONResponse({"Response": {"SendStatusSet": [status], "RequestId": rid}})
