"""`paymend channels check`: a signed query of an order that cannot exist proves the
WeChat Pay channel's credentials and that its API answers, signed with the public key
we know."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from paymend.cli import main
from paymend.config import Settings, secret_env_name
from paymend.sim.wechatpay_api import MerchantKeys
from tests.api.conftest import serve_asgi
from tests.providers.wechatpay.face import face, keys


@pytest.fixture
def api_url() -> Iterator[str]:
    api = face()
    server, thread, url = serve_asgi(api, Settings(), lifespan="on")
    yield url
    server.should_exit = True
    thread.join(10)


def config(tmp_path: Path, base_url: str) -> dict[str, str]:
    path = tmp_path / "paymend.yaml"
    channels = {
        "wechatpay_cn": {"type": "wechatpay", **keys().options(), "base_url": base_url},
        "sim_a": {"type": "simulator", "methods": ["card"]},
    }
    path.write_text(yaml.safe_dump({"providers": channels, "routing": ["wechatpay_cn", "sim_a"]}))
    env = {"PAYMEND_CONFIG": str(path)}
    for name, value in keys().credentials().items():
        env[secret_env_name("wechatpay_cn", name)] = value
    return env


def test_working_credentials_pass(tmp_path: Path, api_url: str) -> None:
    result = CliRunner().invoke(main, ["channels", "check"], env=config(tmp_path, api_url))
    assert result.exit_code == 0, result.output
    assert "wechatpay_cn (wechatpay): ok" in result.output and "ORDER_NOT_EXIST" in result.output


def test_a_wrong_key_or_an_unreachable_api_fails(tmp_path: Path, api_url: str) -> None:
    env = config(tmp_path, api_url)
    other = MerchantKeys.generate().credentials()
    env[secret_env_name("wechatpay_cn", "mch_private_key")] = other["mch_private_key"]
    wrong = CliRunner().invoke(main, ["channels", "check"], env=env)
    assert wrong.exit_code == 1 and "SIGN_ERROR" in wrong.output
    env = config(tmp_path, api_url)
    env[secret_env_name("wechatpay_cn", "wechatpay_public_key")] = other["wechatpay_public_key"]
    unverified = CliRunner().invoke(main, ["channels", "check"], env=env)
    assert unverified.exit_code == 1 and "RESPONSE_SIGNATURE_INVALID" in unverified.output
    down = CliRunner().invoke(
        main, ["channels", "check"], env=config(tmp_path, "http://127.0.0.1:9")
    )
    assert down.exit_code == 1 and "CONNECTION_REFUSED" in down.output
    printed = wrong.output + unverified.output + down.output
    assert "PRIVATE KEY" not in printed and keys().api_v3_key not in printed


def test_config_check_names_a_missing_api_v3_key(tmp_path: Path, api_url: str) -> None:
    env = config(tmp_path, api_url)
    del env[secret_env_name("wechatpay_cn", "api_v3_key")]
    result = CliRunner().invoke(main, ["config", "check"], env=env)
    assert result.exit_code != 0
    assert secret_env_name("wechatpay_cn", "api_v3_key") in result.output
