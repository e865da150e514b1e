"""Alipay's asynchronous notification: a form POST to the `notify_url`, verified before it
is believed, answered with the plain text `success` so Alipay stops resending.

Its fields (https://opendocs.alipay.com/open/203/105286, "异步通知参数说明"): `notify_time`,
`notify_type` (`trade_status_sync`), `notify_id`, `app_id`, `charset`, `version`,
`sign_type`, `sign`, `trade_no`, `out_trade_no`, `trade_status`, `total_amount`,
`receipt_amount`, `gmt_payment`, …. The signature covers every other non-empty field
(`sign` and `sign_type` excluded), sorted, as `k=v&…` of the decoded values; it is
verified with Alipay's public key. Alipay resends until it reads `success`: 8 times over
25 hours (4m, 10m, 10m, 1h, 2h, 6h, 15h).
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from cryptography.hazmat.primitives.asymmetric import rsa

from paymend.providers.alipay import mapping, signing
from paymend.providers.base import NotificationReply, ProviderNotification

ACKNOWLEDGED = NotificationReply(b"success", "text/plain")
MAX_FIELDS = 100


def read(body: bytes, app_id: str, alipay_public_key: rsa.RSAPublicKey) -> ProviderNotification:
    """The verified notification; ValueError for one that is malformed, unsigned,
    signed by another key, or meant for another app."""
    try:
        text = body.decode("utf-8")
        fields = parse_qsl(
            text, keep_blank_values=True, strict_parsing=True, max_num_fields=MAX_FIELDS
        )
    except (UnicodeDecodeError, ValueError):
        raise ValueError("not a form-encoded UTF-8 body") from None
    form: dict[str, str] = {}
    for name, value in fields:
        if name in form:
            raise ValueError(f"field '{name}' given twice")
        form[name] = value
    signature = form.get("sign")
    if not signature or form.get("sign_type") != signing.SIGN_TYPE:
        raise ValueError("not signed with RSA2")
    content = signing.sign_content(form, exclude=("sign", "sign_type"))
    if not signing.verify(alipay_public_key, content, signature):
        raise ValueError("the signature does not verify with Alipay's public key")
    # verified: now it may be read
    if form.get("app_id") != app_id:
        raise ValueError("signed for another app")
    key = mapping.idempotency_key(form["out_trade_no"]) if form.get("out_trade_no") else None
    trade_no = form.get("trade_no") or None
    status = form.get("trade_status", "")
    amount = mapping.fen(form["total_amount"]) if form.get("total_amount") else None
    message = f"notification {form.get('notify_id', '')}: {status}"
    return ProviderNotification(
        idempotency_key=key,
        reference=trade_no,
        result=mapping.trade_status(status, trade_no, message),
        reply=ACKNOWLEDGED,
        amount=amount,
    )
