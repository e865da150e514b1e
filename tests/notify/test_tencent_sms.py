"""Tencent Cloud SMS through its official SDK against a local endpoint answering as
Tencent documents."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from starlette.routing import Route

from paymend.notify.channel import Channel, Message, sms_body
from paymend.notify.tencent_sms import TencentSmsChannel, TencentSmsSettings
from tests import local_server
from tests.notify.tencent_server import INCORRECT, TencentSms

PARAMS = {"order": "o-1", "amount": "¥50.00", "step": "请更换其他银行卡", "link": "https://x/p/1"}


@pytest.fixture
def gateway() -> Iterator[tuple[TencentSms, str]]:
    sms = TencentSms(limited=0)
    with local_server.serving(Route("/", sms.endpoint, methods=["POST"])) as port:
        yield sms, f"127.0.0.1:{port}"


def channel(endpoint: str) -> TencentSmsChannel:
    return TencentSmsChannel(
        TencentSmsSettings(
            "sid", "skey", "1400000000", "paymend", endpoint=endpoint, protocol="http"
        )
    )


def message(phone: str) -> Message:
    return Message("ntc_1", phone, sms_body("1234567", PARAMS, "text"))


def test_a_sent_sms_carries_the_template_and_positional_parameters(
    gateway: tuple[TencentSms, str],
) -> None:
    sms, endpoint = gateway
    ch = channel(endpoint)
    assert isinstance(ch, Channel)
    sent = asyncio.run(ch.send(message("+8613812345678")))
    assert sent.delivered
    (got,) = sms.delivered
    assert got["PhoneNumberSet"] == ["+8613812345678"] and got["SmsSdkAppId"] == "1400000000"
    assert got["TemplateId"] == "1234567" and got["SignName"] == "paymend"
    assert got["TemplateParamSet"] == ["o-1", "¥50.00", "请更换其他银行卡", "https://x/p/1"]
    assert got["SessionContext"] == "ntc_1" and "Credential=sid/" in got["authorization"]


def test_an_incorrect_number_is_final_and_a_frequency_limit_may_be_retried(
    gateway: tuple[TencentSms, str],
) -> None:
    sms, endpoint = gateway
    sms.limited = 1
    incorrect = asyncio.run(channel(endpoint).send(message(INCORRECT)))
    limited = asyncio.run(channel(endpoint).send(message("+8613812345678")))
    assert not incorrect.delivered and not incorrect.retryable
    assert not limited.delivered and limited.retryable
    assert limited.error is not None and limited.error.startswith("LimitExceeded.")
    assert asyncio.run(channel(endpoint).send(message("+8613812345678"))).delivered
