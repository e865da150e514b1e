"""Aliyun SMS through its official SDK against a local endpoint answering as Aliyun does."""

from __future__ import annotations

import asyncio
import json

import apprise
import pytest
from apprise.utils.parse import parse_url

from paymend.notify.aliyun_sms import (
    VARIABLE_MAX,
    AliyunSmsChannel,
    AliyunSmsSettings,
    endpoint_of,
    phone_of,
)
from paymend.notify.apprise_channel import AppriseChannel
from paymend.notify.channel import Channel, Message, sms_body
from tests.notify.aliyun_server import ILLEGAL, AliyunSms, serving

PARAMS = {"order": "o-1", "amount": "¥50.00", "step": "请更换其他银行卡或支付方式"}


def channel(endpoint: str) -> AliyunSmsChannel:
    return AliyunSmsChannel(AliyunSmsSettings("ak", "sk", "paymend", endpoint, "http"))


def message(phone: str) -> Message:
    return Message("ntf_1", phone, sms_body("SMS_1", PARAMS, "text"))


def test_a_sent_sms_reaches_aliyun_signed_with_its_template_and_parameters() -> None:
    sms = AliyunSms()
    with serving(sms) as endpoint:
        ch = channel(endpoint)
        assert isinstance(ch, Channel)
        sent = asyncio.run(ch.send(message("+8613812345678")))
    assert sent.delivered and sent.code == 200
    (got,) = sms.delivered
    assert got["PhoneNumbers"] == "+8613812345678"
    assert got["TemplateCode"] == "SMS_1" and got["SignName"] == "paymend"
    assert got["params"] == PARAMS and got["OutId"] == "ntf_1"
    assert "Credential=ak," in got["authorization"]  # signed with the access key


def test_an_illegal_number_is_final_and_a_rate_limit_may_be_retried() -> None:
    sms = AliyunSms(limited=1)
    with serving(sms) as endpoint:
        illegal = asyncio.run(channel(endpoint).send(message(ILLEGAL)))
        limited = asyncio.run(channel(endpoint).send(message("+8613812345678")))
        again = asyncio.run(channel(endpoint).send(message("+8613812345678")))
    assert not illegal.delivered and not illegal.retryable
    assert illegal.error is not None and illegal.error.startswith("isv.MOBILE_NUMBER_ILLEGAL")
    assert not limited.delivered and limited.retryable
    assert limited.error is not None and limited.error.startswith("isv.BUSINESS_LIMIT_CONTROL")
    assert again.delivered
    assert len(sms.delivered) == 1


def test_an_unreachable_endpoint_is_a_retryable_failure() -> None:
    from tests.local_server import free_port

    sent = asyncio.run(channel(f"127.0.0.1:{free_port()}").send(message("+8613812345678")))
    assert not sent.delivered and sent.retryable and sent.error


def test_the_apprise_plugin_sends_through_the_same_sdk(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PAYMEND_ALIYUN_SMS_ACCESS_KEY_ID", "ak")
    monkeypatch.setenv("PAYMEND_ALIYUN_SMS_ACCESS_KEY_SECRET", "sk")
    sms = AliyunSms()
    with serving(sms) as endpoint:
        host, port = endpoint.split(":")
        ap = apprise.Apprise()
        assert ap.add(
            f"aliyunsms://paymend@{host}:{port}/+8613812345678?template=SMS_9&protocol=http"
        )
        assert ap.notify(body=json.dumps(PARAMS, ensure_ascii=False), title="")
    (got,) = sms.delivered
    assert got["TemplateCode"] == "SMS_9" and got["params"] == PARAMS
    assert (got["PhoneNumbers"], got["SignName"]) == ("+8613812345678", "paymend")


@pytest.mark.parametrize(
    ("url", "endpoint"),
    [
        # Aliyun's own endpoints name no port; Singapore's serves outside mainland China
        (
            "aliyunsms://Shop@dysmsapi.ap-southeast-1.aliyuncs.com/+6591234567?template=SMS_9",
            "dysmsapi.ap-southeast-1.aliyuncs.com",
        ),
        ("aliyunsms://Shop@127.0.0.1:8080/+6591234567?template=SMS_9", "127.0.0.1:8080"),
    ],
)
def test_the_apprise_url_names_the_endpoint_and_the_phone(url: str, endpoint: str) -> None:
    """As apprise parses the URL for the plugin (a custom plugin's arguments)."""
    meta = parse_url(url, verify_host=False, simple=True)  # type: ignore[no-untyped-call]
    assert meta is not None
    assert (endpoint_of(meta), phone_of(meta)) == (endpoint, "+6591234567")


def test_an_ops_page_goes_out_as_an_sms_with_its_title_and_text(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As the pager sends it (engine/ops_alerts.py): through AppriseChannel, the page's
    subject and text, each within Aliyun's default length of a template variable."""
    monkeypatch.setenv("PAYMEND_ALIYUN_SMS_ACCESS_KEY_ID", "ak")
    monkeypatch.setenv("PAYMEND_ALIYUN_SMS_ACCESS_KEY_SECRET", "sk")
    sms = AliyunSms()
    title = "[CRITICAL] incident opened: Channel sim_a is down (channel=sim_a)"
    text = "Diagnosis: failures concentrate in channel=sim_a\nPayments affected: 40"
    page = json.dumps({"subject": title, "text": text}).encode()
    with serving(sms) as endpoint:
        url = f"aliyunsms://支付告警@{endpoint}/+8613812345678?template=SMS_OPS&protocol=http"
        sent = asyncio.run(AppriseChannel("oncall-sms", url).send(Message("inc_1", "", page)))
    assert sent.delivered
    (got,) = sms.delivered
    assert (got["PhoneNumbers"], got["TemplateCode"]) == ("+8613812345678", "SMS_OPS")
    assert got["SignName"] == "支付告警"
    assert got["params"] == {
        "title": title[:VARIABLE_MAX],
        "text": "Diagnosis: failures concentrate in channel=sim_a Payments affected: 40"[
            :VARIABLE_MAX
        ],
    }
    assert len(got["params"]["title"]) == VARIABLE_MAX == 35
