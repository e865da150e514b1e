"""Aliyun SMS (dysmsapi 2017-05-25 `SendSms`) as a notification channel and an apprise plugin.

Aliyun sends only registered templates: the message body is JSON naming the template id
and its parameters (notify/templates.py fills them). `SendSms` answers HTTP 200 with a
`Code`: `OK` is sent; the rest are documented in Aliyun's SendSms reference and its API
error code list (help.aliyun.com/zh/sms/developer-reference/api-dysmsapi-2017-05-25-sendsms,
help.aliyun.com/zh/sms/support/api-error-codes). Codes that say the number or the
template can never work are final (try the next channel); throttling and service errors
may be retried. Access keys come from the environment, never from the policy file.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from alibabacloud_dysmsapi20170525.client import Client
from alibabacloud_dysmsapi20170525.models import SendSmsRequest
from alibabacloud_tea_openapi.models import Config
from apprise.decorators import notify

from paymend.notify.channel import Message, Sent, sms_body

# the recipient or the template cannot work, whatever the wait: the next channel
FINAL = frozenset(
    {
        "isv.MOBILE_NUMBER_ILLEGAL",
        "isv.MOBILE_COUNT_OVER_LIMIT",
        "isv.BLACK_KEY_CONTROL_LIMIT",
        "isv.SMS_TEMPLATE_ILLEGAL",
        "isv.SMS_SIGNATURE_ILLEGAL",
        "isv.TEMPLATE_MISSING_PARAMETERS",
        "isv.INVALID_PARAMETERS",
        "isv.PARAM_LENGTH_LIMIT",
        "isv.DENY_IP_RANGE",
    }
)
# documented as "too many to this number / this account for now": wait and retry
THROTTLED = frozenset({"isv.BUSINESS_LIMIT_CONTROL", "isv.DAY_LIMIT_CONTROL", "Throttling.User"})


ENDPOINT = "dysmsapi.aliyuncs.com"  # SendSms in mainland China
# the RAM user's keys, from the environment: secrets stay out of files
ACCESS_KEYS = ("PAYMEND_ALIYUN_SMS_ACCESS_KEY_ID", "PAYMEND_ALIYUN_SMS_ACCESS_KEY_SECRET")


@dataclass(frozen=True, slots=True)
class AliyunSmsSettings:
    access_key_id: str
    access_key_secret: str
    sign_name: str
    endpoint: str = ENDPOINT
    protocol: str = "https"
    timeout_ms: int = 10_000

    @classmethod
    def from_env(cls, sign_name: str, endpoint: str | None = None) -> AliyunSmsSettings:
        """Keys from PAYMEND_ALIYUN_SMS_ACCESS_KEY_ID / _SECRET: secrets stay out of files."""
        return cls(
            os.environ[ACCESS_KEYS[0]],
            os.environ[ACCESS_KEYS[1]],
            sign_name,
            endpoint or ENDPOINT,
        )


class AliyunSmsChannel:
    name = "aliyun_sms"

    def __init__(self, settings: AliyunSmsSettings) -> None:
        self.settings = settings
        self._client: Client | None = None

    def _sdk(self) -> Client:
        if self._client is None:
            s = self.settings
            self._client = Client(
                Config(
                    access_key_id=s.access_key_id,
                    access_key_secret=s.access_key_secret,
                    endpoint=s.endpoint,
                    protocol=s.protocol,
                    read_timeout=s.timeout_ms,
                    connect_timeout=s.timeout_ms,
                )
            )
        return self._client

    async def send(self, message: Message) -> Sent:
        content = json.loads(message.body)
        request = SendSmsRequest(
            phone_numbers=message.recipient,
            sign_name=self.settings.sign_name,
            template_code=content["template"],
            template_param=json.dumps(content["params"], ensure_ascii=False),
            out_id=message.dedupe_key[:64],  # Aliyun echoes it in delivery receipts
        )
        try:
            # the SDK's own client is blocking-safe only in a thread of its own
            response = await asyncio.to_thread(self._sdk().send_sms, request)
        except Exception as exc:  # noqa: BLE001 - the SDK raises its own and requests' errors
            code = getattr(exc, "code", None)
            status = getattr(exc, "status_code", None) or getattr(exc, "statusCode", None)
            final = code in FINAL
            return Sent(False, status, f"{code or type(exc).__name__}"[:500], not final)
        return answer(response.status_code, response.body.to_map() if response.body else {})

    async def close(self) -> None:
        self._client = None


def answer(status: int | None, body: dict[str, Any]) -> Sent:
    """`SendSms`'s answer as a try's outcome; the error is Aliyun's code and message."""
    code = str(body.get("Code", ""))
    if code == "OK":
        return Sent(True, status)
    error = f"{code}: {body.get('Message', '')}"[:500]
    return Sent(False, status, error, retryable=code not in FINAL)


def endpoint_of(meta: Mapping[str, Any]) -> str | None:
    """The endpoint an `aliyunsms://` URL names (apprise's parse of it, `meta`): its
    host, with its port if it has one. Aliyun's own endpoints have none, and differ by
    region: `dysmsapi.aliyuncs.com` in mainland China, `dysmsapi.ap-southeast-1.aliyuncs.com`
    in Singapore (https://help.aliyun.com/zh/sms/developer-reference/api-dysmsapi-2018-05-01-endpoint)."""
    host = meta.get("host")
    if not host:
        return None
    return f"{host}:{meta['port']}" if meta.get("port") else str(host)


def phone_of(meta: Mapping[str, Any]) -> str:
    """The phone number an `aliyunsms://` URL names: its whole path. (apprise's `path`
    is the path's folder, `/`; the number is in `fullpath`.)"""
    return str(meta.get("fullpath") or meta.get("path") or "").strip("/")


# how long one template variable may be, unless Aliyun lifted the limit for the account
# (https://help.aliyun.com/zh/document_detail/3041859.html)
VARIABLE_MAX = 35


def template_params(title: str, body: str) -> dict[str, str]:
    """The template's parameters for an apprise message: the body itself when it is a
    JSON object (a sender that fills the template's own variables), else an ops page's
    `title` and `text` (its body on one line), each cut to VARIABLE_MAX characters. A
    page's template names either or both: `【支付告警】${title}`."""
    try:
        given = json.loads(body)
    except ValueError:
        given = None
    if isinstance(given, dict):
        return {str(k): str(v) for k, v in given.items()}
    return {"title": title[:VARIABLE_MAX], "text": " ".join(body.split())[:VARIABLE_MAX]}


@notify(on="aliyunsms", name="Aliyun SMS")  # type: ignore[untyped-decorator,no-untyped-call]
def apprise_aliyun_sms(
    body: str, title: str, notify_type: str, meta: dict[str, Any], *args: Any, **kwargs: Any
) -> bool:
    """`aliyunsms://<sign name>@<endpoint>/<phone>?template=<id>`: SMS for ops routes
    (notify/ops_routes.py), which speak apprise URLs. The template's parameters are
    `template_params`; the keys come from the environment (ACCESS_KEYS)."""
    query = meta.get("qsd") or {}
    settings = replace(
        AliyunSmsSettings.from_env(str(meta.get("user") or ""), endpoint_of(meta)),
        protocol=str(query.get("protocol", "https")),
    )
    phone = phone_of(meta)
    message = Message(
        str(query.get("id", "apprise")),
        phone,
        sms_body(str(query.get("template", "")), template_params(title, body), body),
    )
    sent = asyncio.run(AliyunSmsChannel(settings).send(message))
    return sent.delivered
