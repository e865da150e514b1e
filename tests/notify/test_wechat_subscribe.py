"""WeChat subscription messages against a local server speaking WeChat's protocol."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest

from paymend.engine.clock import SystemClock
from paymend.notify.channel import Channel, Message
from paymend.notify.wechat_subscribe import WechatSettings, WechatSubscribeChannel, wechat_body
from tests.notify.wechat_server import APP_ID, SECRET, WechatApi, serving

OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
TEMPLATE = {"id": "WX_FAILED", "data": {"thing1": "title", "character_string2": "order"}}


@pytest.fixture
def wechat() -> Iterator[tuple[WechatApi, str]]:
    api = WechatApi()
    with serving(api) as base:
        yield api, base


def body(title: str = "余额不足") -> bytes:
    return wechat_body(TEMPLATE, {"title": title, "order": "o-42"}, "pages/pay?id=pay_1")


def test_a_message_reaches_the_subscriber_with_one_token_for_many(
    wechat: tuple[WechatApi, str],
) -> None:
    api, base = wechat
    channel = WechatSubscribeChannel(WechatSettings(APP_ID, SECRET, base), SystemClock())
    assert isinstance(channel, Channel)

    async def two() -> list[bool]:
        first = await channel.send(Message("ntc_1", OPENID, body()))
        second = await channel.send(Message("ntc_2", OPENID, body("支付成功")))
        await channel.close()
        return [first.delivered, second.delivered]

    assert asyncio.run(two()) == [True, True]
    assert api.token_calls == 1
    (path, sent), _ = api.sent
    assert path == "/cgi-bin/message/subscribe/bizsend"  # an official account's notices
    assert sent["touser"] == OPENID and sent["template_id"] == "WX_FAILED"
    assert sent["data"] == {"thing1": {"value": "余额不足"}, "character_string2": {"value": "o-42"}}
    assert sent["page"] == "pages/pay?id=pay_1"


def test_a_revoked_token_is_renewed_and_the_message_sent(wechat: tuple[WechatApi, str]) -> None:
    api, base = wechat
    channel = WechatSubscribeChannel(
        WechatSettings(APP_ID, SECRET, base, "mini_program"), SystemClock()
    )

    async def run() -> bool:
        assert (await channel.send(Message("ntc_1", OPENID, body()))).delivered
        api.expire_tokens()  # another server forced a refresh, or it expired early
        sent = await channel.send(Message("ntc_2", OPENID, body()))
        await channel.close()
        return sent.delivered

    assert asyncio.run(run()) and api.token_calls == 2
    path, sent = api.sent[-1]
    assert path == "/cgi-bin/message/subscribe/send" and sent["miniprogram_state"] == "formal"


def test_an_unsubscribed_user_is_final_and_a_busy_server_is_retried(
    wechat: tuple[WechatApi, str],
) -> None:
    api, base = wechat
    api.unsubscribed.add("o-gone-000000")
    channel = WechatSubscribeChannel(WechatSettings(APP_ID, SECRET, base), SystemClock())

    async def run() -> None:
        gone = await channel.send(Message("ntc_1", "o-gone-000000", body()))
        assert (gone.delivered, gone.retryable, gone.code) == (False, False, 43101)
        api.busy = 1
        busy = await channel.send(Message("ntc_2", OPENID, body()))
        assert (busy.delivered, busy.retryable, busy.code) == (False, True, -1)
        # a long title is cut to the 20 characters a `thing` value may hold
        long = await channel.send(Message("ntc_3", OPENID, body("很" * 30)))
        assert long.delivered
        assert json.loads(json.dumps(api.sent[-1][1]))["data"]["thing1"]["value"] == "很" * 20
        await channel.close()

    asyncio.run(run())


def test_a_wrong_secret_is_final(wechat: tuple[WechatApi, str]) -> None:
    _, base = wechat
    channel = WechatSubscribeChannel(WechatSettings(APP_ID, "wrong", base), SystemClock())
    sent = asyncio.run(channel.send(Message("ntc_1", OPENID, body())))
    assert not sent.delivered and not sent.retryable and sent.code == 40125
