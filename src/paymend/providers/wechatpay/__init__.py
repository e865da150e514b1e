"""The WeChat Pay API v3 connector (public-key mode): `provider.py` (the channel),
`client.py` (signed calls over httpx), `signing.py` (SHA256withRSA and AES-256-GCM),
`mapping.py` (answers, order numbers and amounts), `notifications.py` (payment and
refund notifications), `bill.py` (the trade bill)."""

from paymend.providers.wechatpay.provider import WechatpayProvider, build

__all__ = ["WechatpayProvider", "build"]
