"""A small async client of WeChat Pay API v3: signed requests, verified answers, over httpx.

Chosen over the `wechatpayv3` package: that one is synchronous (`requests`) and would
block the engine's event loop or need a thread per call, while every provider call here
is awaited under the engine's deadline and cancelled with it; it reads the clock itself
(the 5-minute window, timestamps), where paymend injects one so the lab runs in virtual
time; and it is built around downloading platform certificates, which WeChat Pay is
retiring for the public-key mode used here. What it would save is the signing and the
AES-GCM, a few lines over `cryptography` (signing.py), which paymend already uses.

Every request is JSON with `Authorization` (signing.py), `Accept: application/json` and
`Wechatpay-Serial: PUB_KEY_ID_…` (the key we verify with, so WeChat Pay signs with it).
A 2xx answer is believed only when its `Wechatpay-Signature` verifies with the WeChat
Pay public key, its serial is that key's id and its timestamp is within 5 minutes. An
error answer (4xx/5xx, `{"code": …, "message": …}`) that carries a signature must verify
too; the only one believed unsigned is 401 (WeChat Pay could not authenticate our
request: it cannot have acted on it). Anything else is `AnswerNotTrusted`: the call's
outcome is unknown and the engine queries.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa

from paymend.domain.clock import Clock
from paymend.providers import answers
from paymend.providers.answers import AnswerNotTrusted
from paymend.providers.base import ProviderConnectionError
from paymend.providers.http_pool import LoopClients, transport_failures
from paymend.providers.wechatpay import signing


@dataclass(frozen=True, slots=True)
class Answer(answers.Answer):
    """One believed answer (providers/answers.py), with WeChat Pay's code and message."""

    @property
    def raw_code(self) -> str:
        """The body's `code` (an error's, or 202's USERPAYING), else the HTTP status of
        an error (failures/providers/wechatpay.yaml maps both), else `SUCCESS`."""
        code = self.body.get("code")
        if isinstance(code, str) and code:
            return code
        return "SUCCESS" if self.ok else str(self.status)

    @property
    def raw_message(self) -> str:
        parts = [f"HTTP {self.status}"]
        if "code" in self.body:
            parts += [
                f"code={self.body.get('code', '')}",
                f"message={self.body.get('message', '')}",
            ]
            if isinstance(self.body.get("detail"), dict):
                parts.append(f"detail={json.dumps(self.body['detail'], ensure_ascii=False)}")
        return "; ".join(parts)[:500]


class WechatpayClient:
    """Signs, sends and verifies API v3 calls for one merchant."""

    def __init__(
        self,
        *,
        base_url: str,
        mchid: str,
        serial_no: str,
        private_key: rsa.RSAPrivateKey,
        public_key: rsa.RSAPublicKey,
        public_key_id: str,
        clock: Clock,
        timeout_s: float | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.mchid = mchid
        self.serial_no = serial_no
        self._private_key = private_key
        self.public_key = public_key
        self.public_key_id = public_key_id
        self.clock = clock
        self.timeout_s = timeout_s
        self._pool = LoopClients(timeout_s, transport)

    def _client(self) -> httpx.AsyncClient:
        return self._pool.get()

    async def aclose(self) -> None:
        await self._pool.aclose()

    def headers(self, method: str, path: str, body: str) -> dict[str, str]:
        """A request's headers, `Authorization` signed over `path` (with its query)."""
        auth = signing.authorization(
            self._private_key,
            mchid=self.mchid,
            serial_no=self.serial_no,
            method=method,
            path=path,
            body=body,
            timestamp=str(int(self.clock.now().timestamp())),
            nonce_str=signing.nonce(),
        )
        return {
            "Authorization": auth,
            "Accept": "application/json",
            "Content-Type": "application/json",
            "Wechatpay-Serial": self.public_key_id,
            "User-Agent": "paymend-wechatpay",
        }

    def sign(self, message: str) -> str:
        """SHA256withRSA with the merchant's key (JSAPI's `paySign`)."""
        return signing.sign(self._private_key, message)

    async def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        query: dict[str, str] | None = None,
    ) -> Answer:
        """Send one call and verify its answer. Raises ProviderConnectionError when no
        answer came (`sent`: whether it may have arrived), AnswerNotTrusted when the
        answer cannot be believed."""
        if query:
            path = f"{path}?{urlencode(query)}"
        text = json.dumps(body, ensure_ascii=False, separators=(",", ":")) if body else ""
        response = await self._send(method, path, text)
        return self.verify_answer(response.status_code, response.headers, response.text)

    def verify_answer(self, status: int, headers: Any, text: str) -> Answer:
        if status == 503:  # refused in front of the API: not processed
            raise ProviderConnectionError(
                "CONNECTION_REFUSED", "wechatpay: HTTP 503, service unavailable", sent=False
            )
        lower = {k.lower(): v for k, v in headers.items()}
        signed = signing.SignedBy.of(lower)
        if status != 401 or signed is not None:  # an unsigned 401 says nothing was done
            why = signing.check(
                signed, text, self.public_key, self.public_key_id, self.clock.now().timestamp()
            )
            if why is not None:
                code = "RESPONSE_NOT_SIGNED" if signed is None else "RESPONSE_SIGNATURE_INVALID"
                raise AnswerNotTrusted(code, f"HTTP {status}: {why}")
        try:
            data = json.loads(text) if text.strip() else {}
        except json.JSONDecodeError:
            raise AnswerNotTrusted("RESPONSE_UNREADABLE", "the answer is not JSON") from None
        if not isinstance(data, dict):
            raise AnswerNotTrusted("RESPONSE_UNREADABLE", "the answer is not a JSON object")
        return Answer(status, data)

    async def _send(self, method: str, path: str, body: str) -> httpx.Response:
        url = self.base_url + path
        headers = self.headers(method, urlsplit(url).path + _query(url), body)
        with transport_failures("wechatpay"):
            return await self._client().request(
                method, url, content=body.encode() if body else None, headers=headers
            )

    async def download(self, url: str) -> bytes:
        """A bill file from the `download_url` the bill query answered: a signed GET
        whose answer is not signed (its SHA1 is checked by the caller)."""
        parts = urlsplit(url)
        headers = self.headers("GET", parts.path + _query(url), "")
        try:
            response = await self._client().get(url, headers=headers)
        except httpx.TransportError as exc:
            raise ProviderConnectionError(
                "CONNECTION_RESET", f"wechatpay bill download: {type(exc).__name__}", sent=False
            ) from None
        if response.status_code != 200:
            raise ProviderConnectionError(
                f"HTTP_{response.status_code}", "wechatpay bill download failed", sent=False
            )
        return response.content


def _query(url: str) -> str:
    query = urlsplit(url).query
    return f"?{query}" if query else ""
