"""Merchant webhooks as a notification channel: an HTTPS POST of the signed event.

Any answer but 2xx, a timeout or a refused connection is not delivered and may be tried
again; redirects are not followed (an endpoint that moved must be configured anew). The
event id travels in `Paymend-Event-Id` on every try, so the shop drops repeats.
"""

from __future__ import annotations

import httpx

from paymend.notify.channel import Message, Sent
from paymend.notify.webhooks import EVENT_ID_HEADER

TIMEOUT_S = 10.0


class WebhookChannel:
    name = "webhook"

    def __init__(self, timeout_s: float = TIMEOUT_S) -> None:
        self.timeout_s = timeout_s
        self._client: httpx.AsyncClient | None = None

    async def send(self, message: Message) -> Sent:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "paymend-webhooks/1",
            EVENT_ID_HEADER: message.dedupe_key,
            **message.headers,
        }
        try:
            response = await self._http().post(
                message.recipient, content=message.body, headers=headers
            )
        except httpx.HTTPError as exc:
            return Sent(False, error=f"{type(exc).__name__}: {exc}"[:500])
        code = response.status_code
        return Sent(200 <= code < 300, code)

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout_s, follow_redirects=False)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
