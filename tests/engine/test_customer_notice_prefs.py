"""A customer's notice preferences in delivery: a channel they opted out of is skipped
for the next one, and WeChat subscription messages reach them at their openid, with
SMS behind when WeChat says they did not subscribe. Real engine, database, and local
servers speaking Aliyun's and WeChat's protocols."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from paymend.domain.ids import MerchantId
from paymend.engine.customer_notices import CustomerNotices
from paymend.engine.virtual_time import run_virtual
from paymend.notify.aliyun_sms import AliyunSmsChannel, AliyunSmsSettings
from paymend.notify.policy import ChannelName, load_policy
from paymend.notify.templates import Templates
from paymend.notify.wechat_subscribe import WechatSettings, WechatSubscribeChannel
from paymend.store import notice_prefs, notices, outbox
from paymend.store.database import Store
from tests.engine.test_customer_notices import HOLD_S, Setup, intents, late_failure, setup
from tests.engine.test_customer_notices import sms as sms  # the Aliyun endpoint fixture
from tests.engine.test_customer_notices import store as store  # the database fixture
from tests.helpers import make_merchant
from tests.notify.aliyun_server import AliyunSms
from tests.notify.wechat_server import APP_ID, SECRET, WechatApi, serving

OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"


@pytest.fixture
def wechat() -> Iterator[tuple[WechatApi, str]]:
    api = WechatApi()
    with serving(api) as base:
        yield api, base


def with_wechat(store: Store, sms_endpoint: str, wechat_base: str) -> Setup:
    """Setup's engine, its notices trying WeChat first, then SMS."""
    s = setup(store, sms_endpoint)
    policy = load_policy().model_copy(
        update={
            "quiet_hours": None,
            "failure_hold": HOLD_S,
            "channels": [ChannelName.WECHAT, ChannelName.SMS],
        }
    )
    sms_channel = AliyunSmsChannel(AliyunSmsSettings("ak", "sk", "paymend", sms_endpoint, "http"))
    wx = WechatSubscribeChannel(WechatSettings(APP_ID, SECRET, wechat_base), s.clock)
    s.notices = CustomerNotices(
        store,
        s.clock,
        s.svc.ids,
        vault=s.svc.pii,
        messages=s.svc.classifier.messages,
        policy=policy,
        templates=Templates(),
        channels={ChannelName.SMS: sms_channel, ChannelName.WECHAT: wx},
        checkout_deadline_s=s.notices.deadline.total_seconds(),
    )
    return s


def prefer(store: Store, s: Setup, mid: MerchantId, **prefs: Any) -> None:
    now = s.clock.now()
    store.run_sync(lambda c: notice_prefs.save(c, s.svc.pii, mid, "c1", now, **prefs))


async def told(s: Setup, mid: MerchantId) -> str:
    worker = s.worker()
    pid = await late_failure(s, worker, mid)
    for _ in range(int(HOLD_S) + 5):
        await s.clock.sleep(1)
        await worker.sweep()
    return pid


def test_wechat_reaches_the_subscriber_and_an_opted_out_channel_is_skipped(
    store: Store, sms: tuple[AliyunSms, str], wechat: tuple[WechatApi, str]
) -> None:
    gateway, endpoint = sms
    api, base = wechat
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        s = with_wechat(store, endpoint, base)
        prefer(store, s, mid, opt_out=["sms"], wechat_openid=OPENID)
        pid = await told(s, mid)
        ((path, sent),) = api.sent
        assert path == "/cgi-bin/message/subscribe/bizsend" and sent["touser"] == OPENID
        assert sent["template_id"] == "WX_PAYMEND_FAILED"
        assert sent["page"] == f"pages/payments/status?id={pid}"
        assert sent["data"]["amount2"] == {"value": "¥50.00"}
        assert gateway.received == []
        (intent,) = intents(store)
        assert (intent["status"], intent["channel"]) == ("sent", "wechat")
        (attempt,) = store.run_sync(lambda c: notices.attempts(c, intent["id"]))
        assert attempt["recipient"] == "oUpF…WeS6o"[:4] + "…" + OPENID[-4:]  # masked

    run_virtual(scenario())


def test_an_unsubscribed_wechat_user_gets_the_sms_and_opting_out_of_all_tells_the_shop(
    store: Store, sms: tuple[AliyunSms, str], wechat: tuple[WechatApi, str]
) -> None:
    gateway, endpoint = sms
    api, base = wechat
    api.unsubscribed.add(OPENID)
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        s = with_wechat(store, endpoint, base)
        prefer(store, s, mid, wechat_openid=OPENID)
        await told(s, mid)
        (got,) = gateway.delivered
        assert got["PhoneNumbers"] == "+8613812345678"
        (intent,) = intents(store)
        assert intent["channel"] == "sms" and "wechat: 43101" in intent["reason"]

        prefer(store, s, mid, opt_out=["sms", "wechat"])  # the openid is kept
        assert store.run_sync(lambda c: notice_prefs.load(c, s.svc.pii, mid, "c1")).wechat_openid
        pid = await told(s, mid)
        assert len(gateway.delivered) == 1 and api.sent == []
        failed = [i for i in intents(store) if i["payment_id"] == pid]
        assert failed[0]["status"] == "failed"
        assert failed[0]["reason"].count("the customer opted out") == 2
        events = store.run_sync(lambda c: outbox.for_subject(c, pid))
        assert "notification.failed" in [e.type for e in events]

    run_virtual(scenario())
