"""Tencent Cloud SMS (`SendSms`, API 2021-01-11) as a notification channel.

Like Aliyun, Tencent sends registered templates only; their parameters are positional
(`{1}`, `{2}`, …), taken here in the order `PARAMS`. The answer is per number, in
`SendStatusSet[].Code`: `Ok` is sent; codes are read as Tencent's SendSms reference and
its error code list document (cloud.tencent.com/document/product/382/55981 and
/382/59177): an invalid or blocked number is final (the next channel), frequency limits
and service errors may be retried. Keys come from the environment.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass

from tencentcloud.common.credential import Credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import (
    TencentCloudSDKException,
)
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.sms.v20210111.models import SendSmsRequest
from tencentcloud.sms.v20210111.sms_client import SmsClient

from paymend.notify.channel import Message, Sent

PARAMS = ("order", "amount", "step", "link")  # the template's {1}..{4}
FINAL_PREFIXES = (
    "InvalidParameterValue.IncorrectPhoneNumber",
    "FailedOperation.PhoneNumberInBlacklist",
    "FailedOperation.TemplateIncorrectOrUnapproved",
    "FailedOperation.SignatureIncorrectOrUnapproved",
    "UnauthorizedOperation.SmsSdkAppIdVerifyFail",
    "InvalidParameterValue.TemplateParameterFormatError",
    "InvalidParameterValue.TemplateParameterLengthLimit",
    "UnsupportedOperation.UnsupportedRegion",
)


# the CAM key, from the environment: secrets stay out of files
SECRET_KEYS = ("PAYMEND_TENCENT_SMS_SECRET_ID", "PAYMEND_TENCENT_SMS_SECRET_KEY")


@dataclass(frozen=True, slots=True)
class TencentSmsSettings:
    secret_id: str
    secret_key: str
    sdk_app_id: str
    sign_name: str
    region: str = "ap-guangzhou"
    endpoint: str = "sms.tencentcloudapi.com"
    protocol: str = "https"

    @classmethod
    def from_env(cls, sdk_app_id: str, sign_name: str, **kwargs: str) -> TencentSmsSettings:
        """Keys from PAYMEND_TENCENT_SMS_SECRET_ID / _SECRET_KEY."""
        return cls(
            os.environ[SECRET_KEYS[0]],
            os.environ[SECRET_KEYS[1]],
            sdk_app_id,
            sign_name,
            **kwargs,
        )


class TencentSmsChannel:
    name = "tencent_sms"

    def __init__(self, settings: TencentSmsSettings) -> None:
        self.settings = settings

    def _client(self) -> SmsClient:
        s = self.settings
        http = HttpProfile(protocol=s.protocol, endpoint=s.endpoint, reqTimeout=10)
        return SmsClient(
            Credential(s.secret_id, s.secret_key), s.region, ClientProfile(httpProfile=http)
        )

    async def send(self, message: Message) -> Sent:
        content = json.loads(message.body)
        request = SendSmsRequest()
        request.PhoneNumberSet = [message.recipient]
        request.SmsSdkAppId = self.settings.sdk_app_id
        request.SignName = self.settings.sign_name
        request.TemplateId = content["template"]
        request.TemplateParamSet = [str(content["params"].get(p, "")) for p in PARAMS]
        request.SessionContext = message.dedupe_key  # echoed in delivery receipts
        try:
            # the SDK's HTTP client blocks: a thread of its own
            response = await asyncio.to_thread(self._client().SendSms, request)
        except TencentCloudSDKException as exc:
            code = exc.get_code() or "TencentCloudSDKException"
            final = code.startswith(FINAL_PREFIXES)
            return Sent(False, None, f"{code}: {exc.get_message()}"[:500], not final)
        (status,) = response.SendStatusSet
        if status.Code == "Ok":
            return Sent(True, 200)
        final = str(status.Code).startswith(FINAL_PREFIXES)
        return Sent(False, 200, f"{status.Code}: {status.Message}"[:500], not final)

    async def close(self) -> None:
        return None
