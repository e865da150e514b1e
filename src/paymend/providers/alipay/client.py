"""A small async client of the Alipay open platform gateway: signed requests, verified
answers, over httpx.

Chosen over python-alipay-sdk (3.4): that SDK is synchronous (`requests`/urllib) and
would block the engine's event loop or need a thread per call, while every provider
call here must be awaited under the engine's deadline and cancelled with it; and it
builds its gateway URL from a host, where a channel's `base_url` may be any URL with a
port (the sandbox, a proxy, the simulator's protocol face on 127.0.0.1). What it would
save is the signing, a few lines over `cryptography` (signing.py).

Request (https://opendocs.alipay.com/common/02kf5q and the API pages of each method):
a form-encoded POST to the gateway with the public parameters `app_id`, `method`,
`format=JSON`, `charset=utf-8`, `sign_type=RSA2`, `timestamp` (Beijing time,
`yyyy-MM-dd HH:mm:ss`), `version=1.0`, optionally `notify_url`, the business parameters
as one JSON string `biz_content`, and `sign`. Answer: JSON
`{"<method with _>_response": {"code", "msg", "sub_code", "sub_msg", …}, "sign": …}`, or
`{"error_response": {…}}` when the gateway refused the call itself (bad app id or
signature: Alipay may not sign those).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta, timezone
from typing import Any
from urllib.parse import urlencode

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa

from paymend.domain.clock import Clock
from paymend.providers import answers
from paymend.providers.alipay import signing
from paymend.providers.answers import AnswerNotTrusted
from paymend.providers.base import ProviderConnectionError
from paymend.providers.http_pool import LoopClients, transport_failures

BEIJING = timezone(timedelta(hours=8))
SUCCESS = "10000"
ERROR_NODE = "error_response"


@dataclass(frozen=True, slots=True)
class Answer(answers.Answer):
    """One verified answer (providers/answers.py): its body is the response node, and
    it is `ok` when the node's `code` is 10000 (Alipay answers HTTP 200 either way)."""

    @property
    def code(self) -> str:
        return str(self.body.get("code", ""))

    @property
    def sub_code(self) -> str | None:
        value = self.body.get("sub_code")
        return str(value) if value else None

    @property
    def ok(self) -> bool:
        return self.code == SUCCESS

    @property
    def raw_code(self) -> str:
        """The most specific code: the `sub_code` when there is one, else the `code`."""
        return self.sub_code or self.code

    @property
    def raw_message(self) -> str:
        """Every part of the answer's reason, kept on the attempt as the provider said."""
        parts = [f"code={self.code}", f"msg={self.body.get('msg', '')}"]
        if self.sub_code:
            parts += [f"sub_code={self.sub_code}", f"sub_msg={self.body.get('sub_msg', '')}"]
        return "; ".join(parts)[:500]


class AlipayClient:
    """Signs, sends and verifies gateway calls for one app."""

    def __init__(
        self,
        *,
        gateway: str,
        app_id: str,
        private_key: rsa.RSAPrivateKey,
        alipay_public_key: rsa.RSAPublicKey,
        clock: Clock,
        notify_url: str | None = None,
        timeout_s: float | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.gateway = gateway
        self.app_id = app_id
        self._private_key = private_key
        self.alipay_public_key = alipay_public_key
        self.clock = clock
        self.notify_url = notify_url
        self.timeout_s = timeout_s
        self._pool = LoopClients(timeout_s, transport)

    def _client(self) -> httpx.AsyncClient:
        return self._pool.get()

    async def aclose(self) -> None:
        await self._pool.aclose()

    def signed(
        self, method: str, biz: dict[str, Any], extra: dict[str, str] | None = None
    ) -> dict[str, str]:
        """The request's parameters, `sign` included."""
        params = {
            "app_id": self.app_id,
            "method": method,
            "format": "JSON",
            "charset": "utf-8",
            "sign_type": signing.SIGN_TYPE,
            "timestamp": self.clock.now().astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S"),
            "version": "1.0",
            "biz_content": json.dumps(biz, ensure_ascii=False, separators=(",", ":")),
            **(extra or {}),
        }
        if self.notify_url:
            params["notify_url"] = self.notify_url
        params["sign"] = signing.sign(self._private_key, signing.sign_content(params))
        return params

    def page_url(self, method: str, biz: dict[str, Any], return_url: str | None) -> str:
        """Where the customer's browser goes for `alipay.trade.page.pay`/`wap.pay`: the
        gateway with the signed parameters in the query (nothing is called now)."""
        extra = {"return_url": return_url} if return_url else None
        return f"{self.gateway}?{urlencode(self.signed(method, biz, extra))}"

    async def call(self, method: str, biz: dict[str, Any]) -> Answer:
        """Send one call and verify its answer. Raises ProviderConnectionError when no
        answer came (`sent`: whether it may have arrived), AnswerNotTrusted when the
        answer cannot be believed."""
        body = await self._post(self.signed(method, biz))
        return self.verify_answer(method, body)

    def verify_answer(self, method: str, body: str) -> Answer:
        node_name = method.replace(".", "_") + "_response"
        try:
            document = json.loads(body)
        except json.JSONDecodeError:
            raise AnswerNotTrusted("RESPONSE_UNREADABLE", "the answer is not JSON") from None
        if not isinstance(document, dict):
            raise AnswerNotTrusted("RESPONSE_UNREADABLE", "the answer is not a JSON object")
        signature = document.get("sign")
        if node_name not in document and ERROR_NODE in document:
            # the gateway refused the call before knowing whose it was (a wrong app id
            # or signature of ours): unsigned, and it says no money moved
            node = document[ERROR_NODE]
            if not isinstance(node, dict) or str(node.get("code")) == SUCCESS:
                raise AnswerNotTrusted("RESPONSE_UNREADABLE", "a malformed error_response")
            return Answer(200, node)
        raw = signing.response_node(body, node_name)
        node = document.get(node_name)
        if raw is None or not isinstance(node, dict):
            raise AnswerNotTrusted("RESPONSE_UNREADABLE", f"the answer has no {node_name}")
        if not isinstance(signature, str) or not signing.verify(
            self.alipay_public_key, raw, signature
        ):
            raise AnswerNotTrusted(
                "RESPONSE_SIGNATURE_INVALID", "the answer's signature does not verify"
            )
        return Answer(200, node)

    async def _post(self, params: dict[str, str]) -> str:
        with transport_failures("alipay gateway"):
            response = await self._client().post(
                self.gateway,
                content=urlencode(params).encode(),
                headers={"content-type": "application/x-www-form-urlencoded;charset=utf-8"},
            )
        if response.status_code == 503:  # refused in front of the gateway: not processed
            raise ProviderConnectionError(
                "CONNECTION_REFUSED", "alipay gateway: HTTP 503, service unavailable", sent=False
            )
        if response.status_code != 200:  # it may have been processed: unknown
            raise AnswerNotTrusted(
                f"HTTP_{response.status_code}", f"the gateway answered HTTP {response.status_code}"
            )
        return response.text

    async def download(self, url: str) -> bytes:
        """A bill file, from the URL the bill query answered (valid for 30 seconds)."""
        try:
            response = await self._client().get(url)
        except httpx.TransportError as exc:
            raise ProviderConnectionError(
                "CONNECTION_RESET", f"alipay bill download: {type(exc).__name__}", sent=False
            ) from None
        if response.status_code != 200:
            raise ProviderConnectionError(
                f"HTTP_{response.status_code}", "alipay bill download failed", sent=False
            )
        return response.content
