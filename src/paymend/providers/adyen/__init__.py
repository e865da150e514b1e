"""The Adyen Checkout API (v71) connector: `provider.py` (the channel), `client.py` (calls
over httpx with the API key and Idempotency-Key), `mapping.py` (answers and amounts),
`notifications.py` (HMAC-signed standard webhooks), `report.py` (the Settlement details
report)."""

from paymend.providers.adyen.provider import AdyenProvider, build

__all__ = ["AdyenProvider", "build"]
