"""WeChat Pay's payment and refund notifications (支付成功回调, 退款结果回调): verified
before anything is read, the resource decrypted, answered so WeChat Pay stops resending.

A notification is a JSON POST signed like an answer (`Wechatpay-Timestamp`, `-Nonce`,
`-Signature`, `-Serial` over `TIMESTAMP\\nNONCE\\nBODY\\n`, with the WeChat Pay public key
whose id is the serial): `{"id", "create_time", "event_type": "TRANSACTION.SUCCESS" |
"REFUND.SUCCESS" | "REFUND.ABNORMAL" | "REFUND.CLOSED", "resource_type":
"encrypt-resource", "resource": {"algorithm": "AEAD_AES_256_GCM", "ciphertext",
"associated_data", "original_type", "nonce"}, "summary"}`. The resource decrypts (with
the APIv3 key) to the transaction (`out_trade_no`, `transaction_id`, `trade_state`,
`amount.total`, `mchid`, …) or the refund.

The acknowledgement is HTTP 200 with `{"code":"SUCCESS","message":"成功"}` (older pages
ask for that body, newer ones for 200/204 with none: the body satisfies both). A
notification that does not verify is refused by the API with a 4xx, which WeChat Pay
takes as a failure and resends (up to 15 times over 24h4m).

Sources: https://pay.weixin.qq.com/wiki/doc/apiv3/apis/chapter3_4_5.shtml (支付通知),
https://pay.weixin.qq.com/wiki/doc/apiv3/apis/chapter3_4_11.shtml (退款结果通知), and
wechatpay-go `core/notify/notify.go` and `core/notify/notify_request.go`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from paymend.providers.base import (
    NotificationReply,
    ProviderNotification,
    ProviderOutcome,
    ProviderResult,
)
from paymend.providers.wechatpay import mapping, signing

ACKNOWLEDGED = NotificationReply(
    '{"code":"SUCCESS","message":"成功"}'.encode(), "application/json", 200
)
ALGORITHM = "AEAD_AES_256_GCM"


def read(
    headers: Mapping[str, str],
    body: bytes,
    *,
    mchid: str,
    api_v3_key: str,
    public_key: rsa.RSAPublicKey,
    public_key_id: str,
    now: float,
) -> ProviderNotification:
    """The verified notification; ValueError for one that is unsigned, signed by another
    key or too long ago, does not decrypt, or is meant for another merchant."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("not UTF-8") from None
    lower = {k.lower(): v for k, v in headers.items()}
    why = signing.check(signing.SignedBy.of(lower), text, public_key, public_key_id, now)
    if why is not None:
        raise ValueError(why)
    # verified: now it may be read
    try:
        document = json.loads(text)
        resource = document["resource"]
        if resource["algorithm"] != ALGORITHM:
            raise ValueError(f"resource algorithm {resource['algorithm']!r}")
        plain = signing.decrypt(
            api_v3_key,
            str(resource["nonce"]),
            str(resource.get("associated_data") or ""),
            str(resource["ciphertext"]),
        )
        content = json.loads(plain)
    except (KeyError, TypeError, json.JSONDecodeError):
        raise ValueError("not a WeChat Pay notification") from None
    if not isinstance(content, dict):
        raise ValueError("the resource is not a JSON object")
    if str(content.get("mchid", mchid)) != mchid:
        raise ValueError("meant for another merchant")
    event = str(document.get("event_type", ""))
    message = f"notification {str(document.get('id', ''))[:64]}: {event}"
    if event.startswith("REFUND."):
        return _refund(content, message)
    return _transaction(content, message)


def _transaction(content: dict[str, Any], message: str) -> ProviderNotification:
    state = str(content.get("trade_state", ""))
    reference = str(content.get("transaction_id") or "") or None
    if state in mapping.PAID:
        result = ProviderResult(ProviderOutcome.SUCCEEDED, state, message, reference)
    elif state in mapping.ENDED_UNPAID:
        result = ProviderResult(ProviderOutcome.DECLINED, state, message, reference)
    else:
        result = ProviderResult(ProviderOutcome.PENDING, state or "UNKNOWN_STATE", message)
    number = str(content.get("out_trade_no") or "")
    amount = content.get("amount")
    total = mapping.fen(amount["total"]) if isinstance(amount, dict) else None
    return ProviderNotification(
        idempotency_key=mapping.idempotency_key(number) if number else None,
        reference=reference,
        result=result,
        reply=ACKNOWLEDGED,
        amount=total,
    )


def _refund(content: dict[str, Any], message: str) -> ProviderNotification:
    """A refund's end: acknowledged, not a charge's outcome (the refund's own call and
    its resends settle it), so it names no attempt."""
    status = str(content.get("refund_status", ""))
    reference = str(content.get("refund_id") or "") or None
    return ProviderNotification(
        idempotency_key=None,
        reference=reference,
        result=ProviderResult(ProviderOutcome.PENDING, status or "UNKNOWN_STATUS", message),
        reply=ACKNOWLEDGED,
    )
