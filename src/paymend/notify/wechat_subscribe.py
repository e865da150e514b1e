"""WeChat subscription messages to a customer who subscribed to the shop's notices.

An official account (公众号) sends "subscription notices" with
`POST /cgi-bin/message/subscribe/bizsend?access_token=…`; a mini program with
`POST /cgi-bin/message/subscribe/send?access_token=…`. Both take `touser` (the
customer's openid under the app), a `template_id` chosen in the WeChat console, an
optional `page`, and `data` whose keys are the template's own (`thing1`, `amount2`, …),
each `{"value": …}` within its type's length. The access token comes from
`POST /cgi-bin/stable_token` (client_credential), which does not invalidate the token
other servers of the same app hold; it is kept until shortly before it expires.

References (developers.weixin.qq.com):
- doc/service/en/api/notify/notify/api_sendnewsubscribemsg.html (bizsend)
- miniprogram/dev/OpenApiDoc/mp-message-management/subscribe-message/sendMessage.html
- doc/offiaccount/Basic_Information/getStableAccessToken.html (stable_token)
- the error codes there: 43101 the user refused / did not subscribe, 40003 an invalid
  openid, 40037 an invalid template, 47003 a data value out of its rules, 43107 the
  ability banned: final; 40001 / 40014 / 42001 a bad or expired token: a new token and
  one more try; -1 (system busy), 45009 (quota), 43108 (concurrency): retried.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from paymend.domain.clock import Clock
from paymend.notify.channel import Message, Sent

BASE_URL = "https://api.weixin.qq.com"
SECRET_ENV = "PAYMEND_WECHAT_APP_SECRET"  # noqa: S105 - the name of the variable
TOKEN_ERRORS = frozenset({40001, 40014, 42001})
FINAL = frozenset({43101, 40003, 40037, 47003, 43107, 40013, 40125})
TOKEN_MARGIN_S = 300.0  # a token is renewed this long before WeChat says it expires
# a data key's type (its letters) and the longest value WeChat takes for it
_LIMITS = {"thing": 20, "character_string": 32, "phrase": 5, "name": 10, "symbol": 5}
Account = Literal["official_account", "mini_program"]


@dataclass(frozen=True, slots=True)
class WechatSettings:
    app_id: str
    app_secret: str
    base_url: str = BASE_URL
    account: Account = "official_account"
    miniprogram_state: str = "formal"  # a mini program's page: formal | trial | developer

    @classmethod
    def from_env(
        cls, app_id: str, base_url: str = BASE_URL, account: Account = "official_account"
    ) -> WechatSettings:
        """The app secret from PAYMEND_WECHAT_APP_SECRET: secrets stay out of files."""
        return cls(app_id, os.environ[SECRET_ENV], base_url.rstrip("/"), account)


def wechat_body(template: Mapping[str, Any], values: Mapping[str, str], page: str | None) -> bytes:
    """What the channel carries: the template id, its data (each key's value from
    `values` by the template's mapping, cut to its type's length) and the page."""
    data = {}
    for key, name in dict(template["data"]).items():
        kind = key.rstrip("0123456789")
        value = str(values.get(name, ""))
        data[key] = {"value": value[: _LIMITS.get(kind, 32)]}
    body = {"template_id": template["id"], "data": data}
    if page:
        body["page"] = page
    return json.dumps(body, ensure_ascii=False).encode()


class WechatSubscribeChannel:
    name = "wechat"

    def __init__(self, settings: WechatSettings, clock: Clock, timeout_s: float = 10.0) -> None:
        self.settings = settings
        self.clock = clock
        self.timeout_s = timeout_s
        self._token: str | None = None
        self._token_until = 0.0
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    def _now(self) -> float:
        return self.clock.monotonic()

    async def send(self, message: Message) -> Sent:
        content = json.loads(message.body)
        payload: dict[str, Any] = {
            "touser": message.recipient,
            "template_id": content["template_id"],
            "data": content["data"],
        }
        if content.get("page"):
            payload["page"] = content["page"]
        if self.settings.account == "mini_program":
            payload |= {"miniprogram_state": self.settings.miniprogram_state, "lang": "zh_CN"}
        verb = "bizsend" if self.settings.account == "official_account" else "send"
        for fresh in (False, True):
            token = await self._access_token(force=fresh)
            if isinstance(token, Sent):
                return token
            url = f"{self.settings.base_url}/cgi-bin/message/subscribe/{verb}"
            answer = await self._post(url, payload, {"access_token": token})
            if isinstance(answer, Sent):
                return answer
            code = int(answer.get("errcode", 0))
            if code == 0:
                return Sent(True, 0)
            error = f"{code}: {answer.get('errmsg', '')}"[:300]
            if code in TOKEN_ERRORS and not fresh:
                self._token = None  # revoked or expired early: one more try with a new one
                continue
            return Sent(False, code, error, retryable=code not in FINAL)
        return Sent(False, None, "no access token WeChat accepts")  # pragma: no cover

    async def _access_token(self, *, force: bool) -> str | Sent:
        if not force and self._token is not None and self._now() < self._token_until:
            return self._token
        s = self.settings
        body = {"grant_type": "client_credential", "appid": s.app_id, "secret": s.app_secret}
        answer = await self._post(
            f"{s.base_url}/cgi-bin/stable_token", body | {"force_refresh": force}, {}
        )
        if isinstance(answer, Sent):
            return answer
        token = answer.get("access_token")
        if not token:
            code = int(answer.get("errcode", -1))
            # a wrong app id or secret will not mend itself: ops must fix the config
            final = code in (40013, 40125, 40164)
            error = f"access token refused: {code}: {answer.get('errmsg', '')}"[:300]
            return Sent(False, code, error, retryable=not final)
        self._token = str(token)
        self._token_until = self._now() + float(answer.get("expires_in", 7200)) - TOKEN_MARGIN_S
        return self._token

    async def _post(
        self, url: str, body: dict[str, Any], params: dict[str, str]
    ) -> dict[str, Any] | Sent:
        # a blocking client in a thread: its timeout is real time, where an async one's
        # would run on the event loop's clock, which jumps under virtual time
        return await asyncio.to_thread(self._post_blocking, url, body, params)

    def _post_blocking(
        self, url: str, body: dict[str, Any], params: dict[str, str]
    ) -> dict[str, Any] | Sent:
        content = json.dumps(body, ensure_ascii=False).encode()
        try:
            response = self._http().post(url, params=params, content=content)
        except httpx.HTTPError as exc:
            return Sent(False, None, f"{type(exc).__name__}: {exc}"[:300])
        if response.status_code != 200:
            return Sent(False, response.status_code, f"HTTP {response.status_code}")
        try:
            parsed = response.json()
        except ValueError:
            return Sent(False, 200, "not a JSON answer")
        return parsed if isinstance(parsed, dict) else Sent(False, 200, "not a JSON object")

    def _http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(
                    timeout=self.timeout_s, headers={"Content-Type": "application/json"}
                )
            return self._client

    async def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()
