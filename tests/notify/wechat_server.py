"""A local stand-in for api.weixin.qq.com that speaks the subscription-message protocol
as developers.weixin.qq.com documents it: `POST /cgi-bin/stable_token` hands out access
tokens, `POST /cgi-bin/message/subscribe/bizsend` (official accounts) and `/send` (mini
programs) take a message for a subscribed openid, answering `{"errcode", "errmsg"}`:
40001 for a token it does not know, 43101 for a user who did not subscribe, 47003 for a
value longer than its key's type allows, -1 when busy."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests import local_server

APP_ID = "wx0123456789abcdef"
SECRET = "app-secret-for-tests"


class WechatApi:
    def __init__(self) -> None:
        self.tokens: set[str] = set()
        self.token_calls = 0
        self.unsubscribed: set[str] = set()
        self.busy = 0  # the next N sends answer -1, system busy
        self.sent: list[tuple[str, dict[str, Any]]] = []  # (path, body) of accepted sends

    def expire_tokens(self) -> None:
        self.tokens.clear()

    async def stable_token(self, request: Request) -> JSONResponse:
        body = json.loads(await request.body())
        self.token_calls += 1
        if body.get("appid") != APP_ID or body.get("secret") != SECRET:
            return JSONResponse({"errcode": 40125, "errmsg": "invalid appsecret"})
        token = f"token-{self.token_calls}"
        self.tokens.add(token)
        return JSONResponse({"access_token": token, "expires_in": 7200})

    async def send(self, request: Request) -> JSONResponse:
        if request.query_params.get("access_token") not in self.tokens:
            return JSONResponse({"errcode": 40001, "errmsg": "invalid credential"})
        body = json.loads(await request.body())
        if self.busy > 0:
            self.busy -= 1
            return JSONResponse({"errcode": -1, "errmsg": "system error"})
        if body.get("touser") in self.unsubscribed:
            return JSONResponse({"errcode": 43101, "errmsg": "user refuse to accept the msg"})
        for key, value in body.get("data", {}).items():
            if key.startswith("thing") and len(value.get("value", "")) > 20:
                return JSONResponse({"errcode": 47003, "errmsg": f"data.{key}.value invalid"})
        self.sent.append((request.url.path, body))
        return JSONResponse({"errcode": 0, "errmsg": "ok", "msgid": len(self.sent)})


@contextmanager
def serving(api: WechatApi) -> Iterator[str]:
    """The server on a free port of 127.0.0.1; yields its base URL."""
    with local_server.serving(
        Route("/cgi-bin/stable_token", api.stable_token, methods=["POST"]),
        Route("/cgi-bin/message/subscribe/bizsend", api.send, methods=["POST"]),
        Route("/cgi-bin/message/subscribe/send", api.send, methods=["POST"]),
    ) as port:
        yield f"http://127.0.0.1:{port}"
