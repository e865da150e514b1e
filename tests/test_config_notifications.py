"""Customer notices from paymend.yaml: channels as configured, the policy file beside it,
secrets from the environment, and a broken policy that refuses to start."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from paymend.config import load_config
from paymend.datafiles import DataFileError
from paymend.engine.clock import LoopClock
from paymend.engine.notice_setup import build_customer_notices
from paymend.notify.aliyun_sms import AliyunSmsChannel
from paymend.notify.email_channel import EmailChannel
from paymend.notify.policy import ChannelName
from paymend.notify.tencent_sms import TencentSmsChannel
from paymend.store.database import Store
from tests.helpers import service, simulator

CONFIG = """\
providers:
  sim_a: {type: simulator, methods: [card]}
routing: [sim_a]
notifications:
  policy: notifications.yaml
  aliyun_sms: {endpoint: "127.0.0.1:9", protocol: http}
  email: "mailtos://shop@smtp.example.com?from=shop@example.com"
"""

POLICY = """\
version: 1
channels: [email, sms]
status_url: "https://shop.example/p/{payment_id}"
support: "400-800-1234"
events:
  payment_failed: {}
"""


@pytest.fixture
def store(sqlite_url: str) -> Iterator[Store]:
    s = Store(sqlite_url, inline=True)
    yield s
    s.close()


def test_paymend_yaml_configures_the_channels_and_names_the_policy(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAYMEND_ALIYUN_SMS_ACCESS_KEY_ID", "ak")
    monkeypatch.setenv("PAYMEND_ALIYUN_SMS_ACCESS_KEY_SECRET", "sk")
    (tmp_path / "paymend.yaml").write_text(CONFIG, encoding="utf-8")
    (tmp_path / "notifications.yaml").write_text(POLICY, encoding="utf-8")
    config = load_config(tmp_path / "paymend.yaml")
    clock = LoopClock()
    svc = service(store, {"sim_a": simulator(clock=clock)}, clock)
    notices = build_customer_notices(config.notifications, tmp_path / "paymend.yaml", svc, clock)
    assert notices is not None
    assert notices.policy.channels == [ChannelName.EMAIL, ChannelName.SMS]
    assert isinstance(notices.channels[ChannelName.SMS], AliyunSmsChannel)
    assert isinstance(notices.channels[ChannelName.EMAIL], EmailChannel)

    (tmp_path / "notifications.yaml").write_text(
        POLICY.replace("[email, sms]", "[email, fax]"), encoding="utf-8"
    )
    with pytest.raises(DataFileError) as caught:
        build_customer_notices(config.notifications, tmp_path / "paymend.yaml", svc, clock)
    assert caught.value.line == 2 and "notifications.yaml" in str(caught.value)


def test_tencent_sms_configures_the_sms_slot_and_only_one_provider_may(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAYMEND_TENCENT_SMS_SECRET_ID", "sid")
    monkeypatch.setenv("PAYMEND_TENCENT_SMS_SECRET_KEY", "skey")
    text = CONFIG.replace("aliyun_sms:", "tencent_sms:").replace(
        "{endpoint:", "{sdk_app_id: '1400000000', endpoint:"
    )
    (tmp_path / "paymend.yaml").write_text(text, encoding="utf-8")
    (tmp_path / "notifications.yaml").write_text(POLICY, encoding="utf-8")
    config = load_config(tmp_path / "paymend.yaml")
    clock = LoopClock()
    svc = service(store, {"sim_a": simulator(clock=clock)}, clock)
    notices = build_customer_notices(config.notifications, tmp_path / "paymend.yaml", svc, clock)
    assert notices is not None
    assert isinstance(notices.channels[ChannelName.SMS], TencentSmsChannel)
    both = text.replace("  email:", "  aliyun_sms: {}\n  email:")
    (tmp_path / "paymend.yaml").write_text(both, encoding="utf-8")
    with pytest.raises(DataFileError, match="one SMS provider"):
        load_config(tmp_path / "paymend.yaml")


def test_without_a_channel_no_notice_is_planned(tmp_path: Path, store: Store) -> None:
    (tmp_path / "paymend.yaml").write_text(CONFIG.split("notifications:")[0], encoding="utf-8")
    config = load_config(tmp_path / "paymend.yaml")
    clock = LoopClock()
    svc = service(store, {"sim_a": simulator(clock=clock)}, clock)
    assert build_customer_notices(config.notifications, tmp_path, svc, clock) is None
