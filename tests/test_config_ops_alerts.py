"""Ops paging and WeChat notices from paymend.yaml: the routes file beside it wires the
pager into the worker; a broken routes file, an unset route secret or WeChat without its
secret refuses to start, naming where."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from paymend.cli import main
from paymend.config import Settings, load_config
from paymend.datafiles import DataFileError
from paymend.engine.clock import LoopClock
from paymend.engine.notice_setup import build_customer_notices
from paymend.engine.runtime import build_runtime
from paymend.notify.aliyun_sms import AliyunSmsChannel
from paymend.notify.ops_routes import fill_secrets
from paymend.notify.policy import ChannelName
from paymend.notify.tencent_sms import TencentSmsChannel
from paymend.notify.wechat_subscribe import WechatSubscribeChannel
from paymend.store.jobs import JobKind
from tests.helpers import service, simulator

CONFIG = """\
providers:
  sim_a: {type: simulator, methods: [card]}
routing: [sim_a]
ops_alerts:
  routes: ops-routes.yaml
"""

ROUTES = """\
routes:
  oncall: "wecombot://${PAYMEND_TEST_WECOM_KEY}"
  leads: "slack://T1/B2/${PAYMEND_TEST_SLACK_TOKEN}/#payments"
levels:
  - routes: [oncall]
    escalate_after: 15m
  - routes: [leads]
"""


def write(tmp_path: Path, routes: str = ROUTES) -> Path:
    (tmp_path / "paymend.yaml").write_text(CONFIG)
    (tmp_path / "ops-routes.yaml").write_text(routes)
    return tmp_path / "paymend.yaml"


def test_the_routes_file_wires_ops_paging_into_the_worker(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAYMEND_TEST_WECOM_KEY", "k" * 20)
    monkeypatch.setenv("PAYMEND_TEST_SLACK_TOKEN", "t" * 24)
    path = write(tmp_path)
    runtime = build_runtime(
        Settings(database_url=sqlite_url, config=str(path)), load_config(path), config_path=path
    )
    try:
        pager = runtime.worker.ops_alerts
        assert pager is not None and JobKind.SEND_OPS_ALERT in runtime.worker.registry.kinds()
        assert pager.routes.urls["oncall"] == "wecombot://" + "k" * 20
    finally:
        runtime.close()
    checked = CliRunner().invoke(main, ["config", "check", str(path)])
    assert checked.exit_code == 0, checked.output
    assert "ops routes" in checked.output and "oncall -> leads" in checked.output
    assert "k" * 20 not in checked.output


def test_an_unset_route_secret_refuses_to_start_with_its_line(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAYMEND_TEST_WECOM_KEY", "k" * 20)
    monkeypatch.delenv("PAYMEND_TEST_SLACK_TOKEN", raising=False)
    path = write(tmp_path)
    with pytest.raises(DataFileError) as refused:
        build_runtime(Settings(database_url=sqlite_url), load_config(path), config_path=path)
    assert refused.value.line == 3 and "PAYMEND_TEST_SLACK_TOKEN is not set" in str(refused.value)
    checked = CliRunner().invoke(main, ["config", "check", str(path)])
    assert checked.exit_code != 0 and "ops-routes.yaml:3" in checked.output


def test_a_route_that_is_not_an_apprise_url_names_its_line(tmp_path: Path) -> None:
    from paymend.notify.ops_routes import load_routes

    path = write(tmp_path, ROUTES.replace("wecombot://", "ftp://"))
    with pytest.raises(DataFileError) as refused:
        load_routes(tmp_path / "ops-routes.yaml", {"PAYMEND_TEST_WECOM_KEY": "k"})
    assert refused.value.line == 2 and "an apprise URL" in str(refused.value)
    assert path.exists()


def test_wechat_needs_its_secret_and_then_is_a_channel(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from paymend.store.database import Store

    (tmp_path / "paymend.yaml").write_text(
        CONFIG.replace(
            "ops_alerts:\n  routes: ops-routes.yaml\n",
            "notifications:\n  wechat: {app_id: wx0123456789abcdef}\n",
        )
    )
    config = load_config(tmp_path / "paymend.yaml")
    store = Store(sqlite_url, inline=True)
    clock = LoopClock()
    svc = service(store, {"sim_a": simulator(clock=clock)}, clock)
    monkeypatch.delenv("PAYMEND_WECHAT_APP_SECRET", raising=False)
    path = tmp_path / "paymend.yaml"
    link_key, public_url = b"k", "https://pay.shop.cn"  # the shipped policy's link
    with pytest.raises(DataFileError, match="PAYMEND_WECHAT_APP_SECRET is not set"):
        build_customer_notices(
            config.notifications, path, svc, clock, link_key=link_key, public_url=public_url
        )
    monkeypatch.setenv("PAYMEND_WECHAT_APP_SECRET", "s3cret")
    notices = build_customer_notices(
        config.notifications, path, svc, clock, link_key=link_key, public_url=public_url
    )
    assert notices is not None
    assert isinstance(notices.channels[ChannelName.WECHAT], WechatSubscribeChannel)
    store.close()


def test_an_sms_route_needs_the_aliyun_keys_in_the_environment(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`aliyunsms://` pages by SMS; without the RAM user's keys it could never send, so
    it refuses to start like a route whose `${SECRET}` is not set."""
    monkeypatch.setenv("PAYMEND_TEST_WECOM_KEY", "k" * 20)
    sms = ROUTES.replace(
        '  leads: "slack://T1/B2/${PAYMEND_TEST_SLACK_TOKEN}/#payments"',
        '  leads: "aliyunsms://Shop@dysmsapi.aliyuncs.com/+8613812345678?template=SMS_OPS"',
    )
    assert sms != ROUTES
    monkeypatch.delenv("PAYMEND_ALIYUN_SMS_ACCESS_KEY_ID", raising=False)
    monkeypatch.setenv("PAYMEND_ALIYUN_SMS_ACCESS_KEY_SECRET", "sk")
    path = write(tmp_path, sms)
    with pytest.raises(DataFileError) as refused:
        build_runtime(Settings(database_url=sqlite_url), load_config(path), config_path=path)
    assert refused.value.line == 3
    assert "PAYMEND_ALIYUN_SMS_ACCESS_KEY_ID is not set" in str(refused.value)
    monkeypatch.setenv("PAYMEND_ALIYUN_SMS_ACCESS_KEY_ID", "ak")
    runtime = build_runtime(
        Settings(database_url=sqlite_url, config=str(path)), load_config(path), config_path=path
    )
    try:
        pager = runtime.worker.ops_alerts
        assert pager is not None and pager.routes.urls["leads"].startswith("aliyunsms://Shop@")
    finally:
        runtime.close()


def test_a_secret_is_encoded_in_a_login_and_kept_as_it_is_elsewhere() -> None:
    env = {"PASSWORD": "p@ss:w/rd", "TOKENS": "T1/B2/xyz", "KEY": "k1"}
    assert fill_secrets("mailtos://alerts:${PASSWORD}@smtp.example.com?to=a@b.c", env) == (
        "mailtos://alerts:p%40ss%3Aw%2Frd@smtp.example.com?to=a@b.c"
    )
    assert fill_secrets("slack://${TOKENS}/#payments", env) == "slack://T1/B2/xyz/#payments"
    assert fill_secrets("dingtalk://${KEY}@${TOKENS}/", env) == "dingtalk://k1@T1/B2/xyz/"


@pytest.mark.parametrize(
    ("channel", "keys", "built"),
    [
        (
            "aliyun_sms: {}",
            ("PAYMEND_ALIYUN_SMS_ACCESS_KEY_ID", "PAYMEND_ALIYUN_SMS_ACCESS_KEY_SECRET"),
            AliyunSmsChannel,
        ),
        (
            'tencent_sms: {sdk_app_id: "1400000000"}',
            ("PAYMEND_TENCENT_SMS_SECRET_ID", "PAYMEND_TENCENT_SMS_SECRET_KEY"),
            TencentSmsChannel,
        ),
    ],
)
def test_an_sms_provider_needs_its_keys_and_config_check_names_the_one_not_set(
    channel: str,
    keys: tuple[str, str],
    built: type,
    tmp_path: Path,
    sqlite_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Configured without its keys an SMS provider could never send: the server refuses
    to start and `config check` fails, each naming the variable, not a KeyError."""
    from paymend.store.database import Store

    path = tmp_path / "paymend.yaml"
    path.write_text(
        CONFIG.replace("ops_alerts:\n  routes: ops-routes.yaml\n", f"notifications:\n  {channel}\n")
    )
    monkeypatch.setenv("PAYMEND_LINK_KEY", "k" * 32)
    monkeypatch.setenv(keys[0], "id")
    monkeypatch.delenv(keys[1], raising=False)
    config = load_config(path)
    store = Store(sqlite_url, inline=True)
    clock = LoopClock()
    svc = service(store, {"sim_a": simulator(clock=clock)}, clock)
    link_key, public_url = b"k", "https://pay.shop.cn"
    try:
        with pytest.raises(DataFileError, match=f"{keys[1]} is not set"):
            build_customer_notices(
                config.notifications, path, svc, clock, link_key=link_key, public_url=public_url
            )
        checked = CliRunner().invoke(main, ["config", "check", str(path)])
        assert checked.exit_code != 0 and f"{keys[1]} is not set" in checked.output
        assert "secrets missing" in checked.output
        monkeypatch.setenv(keys[1], "secret")
        notices = build_customer_notices(
            config.notifications, path, svc, clock, link_key=link_key, public_url=public_url
        )
        assert notices is not None and isinstance(notices.channels[ChannelName.SMS], built)
        assert CliRunner().invoke(main, ["config", "check", str(path)]).exit_code == 0
    finally:
        store.close()
