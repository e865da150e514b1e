"""The Alipay open platform connector (RSA2): `provider.py` (the channel), `client.py`
(signed calls over httpx), `signing.py`, `mapping.py` (answers and amounts),
`notifications.py` (the asynchronous notification), `bill.py` (the daily trade bill)."""

from paymend.providers.alipay.provider import AlipayProvider, build

__all__ = ["AlipayProvider", "build"]
