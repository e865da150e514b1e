"""A small async client of Adyen's Checkout API (v71) over httpx.

No Adyen SDK: the official Python library (Adyen 16 on PyPI) sends its calls through
`requests`/`pycurl`/urllib synchronously, so every call would block the engine's event
loop or need a thread, and could not be cancelled with the engine's deadline; it would
save only the JSON shapes of five endpoints and a dozen lines of HMAC (notifications.py).
A channel's `base_url` may be Adyen's test or live host, or any URL with a port (the
simulator's protocol face on 127.0.0.1).

Request (https://docs.adyen.com/api-explorer/Checkout/71/overview): JSON over HTTPS with
the API key in `X-API-Key`, and on every call that moves money an `Idempotency-Key`
header (https://docs.adyen.com/development-resources/api-idempotency): Adyen keeps each
key at least 7 days and answers a repeated request with the first one's answer, never
making a second payment; a repeat while the first is still being processed is HTTP 409
/ errorCode 704. Answers: HTTP 200 with the resource; or an error object
`{"status", "errorCode", "message", "errorType", "pspReference"}` with a 4xx/5xx status
(https://docs.adyen.com/development-resources/response-handling/).
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from paymend.providers.answers import Answer, AnswerNotTrusted
from paymend.providers.base import ProviderConnectionError
from paymend.providers.http_pool import LoopClients, transport_failures

API_VERSION = "v71"


class AdyenClient:
    """Sends Checkout calls for one merchant account with one API key."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        merchant_account: str,
        timeout_s: float | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.merchant_account = merchant_account
        self.timeout_s = timeout_s
        self._pool = LoopClients(timeout_s, transport)

    def _client(self) -> httpx.AsyncClient:
        return self._pool.get()

    async def aclose(self) -> None:
        await self._pool.aclose()

    def url(self, path: str) -> str:
        return f"{self.base_url}/{API_VERSION}/{path.lstrip('/')}"

    async def call(
        self, path: str, body: dict[str, Any], idempotency_key: str | None = None
    ) -> Answer:
        """POST one call. Raises ProviderConnectionError when no answer came (`sent`:
        whether it may have arrived), AnswerNotTrusted when the answer cannot be read."""
        headers = {"X-API-Key": self._api_key, "Content-Type": "application/json"}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        with transport_failures("adyen"):
            response = await self._client().post(
                self.url(path), content=json.dumps(body).encode(), headers=headers
            )
        if response.status_code == 503 and not _is_json(response):
            # refused in front of the API (a load balancer): nothing was processed. A
            # 502 or 504 may come after the request went through: read as unknown.
            raise ProviderConnectionError(
                "CONNECTION_REFUSED", f"adyen: HTTP {response.status_code}", sent=False
            )
        return read(response.status_code, response.content)

    async def download(self, url: str) -> bytes:
        """A report file (https://docs.adyen.com/reporting/download-reports-automatically):
        authenticated with the same API key, whose credential needs the Reports role."""
        try:
            response = await self._client().get(url, headers={"X-API-Key": self._api_key})
        except httpx.TransportError as exc:
            raise ProviderConnectionError(
                "CONNECTION_RESET", f"adyen report download: {type(exc).__name__}", sent=False
            ) from None
        if response.status_code != 200:
            raise ProviderConnectionError(
                f"HTTP_{response.status_code}", "adyen report download failed", sent=False
            )
        return response.content


def read(status: int, content: bytes) -> Answer:
    """An answer's JSON object; AnswerNotTrusted for anything else."""
    try:
        document = json.loads(content)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise AnswerNotTrusted("RESPONSE_UNREADABLE", f"HTTP {status}: not JSON") from None
    if not isinstance(document, dict):
        raise AnswerNotTrusted("RESPONSE_UNREADABLE", f"HTTP {status}: not a JSON object")
    return Answer(status, document)


def _is_json(response: httpx.Response) -> bool:
    return str(response.headers.get("content-type", "")).startswith("application/json")
