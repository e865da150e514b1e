"""Real channels in paymend.yaml: a tagged union on `type`, validated with the line of a
mistake; credentials only from the environment or the secrets file, masked when shown,
and a missing one named before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from paymend.cli import main
from paymend.config import channel_credentials, load_config
from paymend.config.channels import AlipayChannel
from paymend.datafiles import DataFileError
from paymend.engine.channels import build_channels
from paymend.engine.clock import SystemClock
from paymend.providers.simulator import SimulatedProvider
from tests.providers.alipay.face import keys as alipay_keys

CONFIG = """\
seed: 1
secrets_file: secrets.yaml
providers:
  sim_a:
    type: simulator
    methods: [card, alipay]
  alipay_cn:
    type: alipay
    app_id: "2021000000000001"
    base_url: http://127.0.0.1:9/gateway.do
    notify_url: https://shop.example/v1/providers/alipay_cn/notifications
routing: [alipay_cn, sim_a]
"""
PRIVATE = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----"


def write(tmp_path: Path, text: str, secrets: str | None = None) -> Path:
    path = tmp_path / "paymend.yaml"
    path.write_text(text)
    if secrets is not None:
        (tmp_path / "secrets.yaml").write_text(secrets)
    return path


def test_a_real_channel_is_declared_beside_a_simulated_one(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, CONFIG))
    channel = config.providers["alipay_cn"]
    assert isinstance(channel, AlipayChannel)
    assert channel.url() == "http://127.0.0.1:9/gateway.do"
    assert channel.methods == ["alipay"] and channel.currencies == ["CNY"]
    assert config.providers["sim_a"].type == "simulator"


@pytest.mark.parametrize(
    ("change", "line", "words"),
    [
        (("type: alipay", "type: alipy"), 8, "providers.alipay_cn.type: must be one of"),
        (('app_id: "2021000000000001"', "app_id: abc"), 9, "providers.alipay_cn.app_id"),
        (("base_url: http://", "base_url: ftp://"), 10, "base_url"),
        (("    app_id:", "    secret_key: x\n    app_id:"), 9, "unknown key"),
        (("alipay_cn:", "Alipay-CN:"), 7, "providers.Alipay-CN"),
    ],
)
def test_mistakes_name_the_line(
    tmp_path: Path, change: tuple[str, str], line: int, words: str
) -> None:
    path = write(tmp_path, CONFIG.replace(*change))
    with pytest.raises(DataFileError) as info:
        load_config(path)
    assert info.value.line == line, str(info.value)
    assert words in str(info.value)


def test_credentials_come_from_the_environment_before_the_secrets_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        CONFIG,
        "alipay_cn:\n  app_private_key: from-file\n  alipay_public_key: also-from-file\n",
    )
    env = {"PAYMEND_SECRET_ALIPAY_CN_APP_PRIVATE_KEY": PRIVATE}
    creds = {c.name: c for c in channel_credentials(load_config(path), path, env)["alipay_cn"]}
    assert creds["app_private_key"].source == "environment"
    assert creds["app_private_key"].value is not None
    assert creds["app_private_key"].value.get_secret_value() == PRIVATE
    assert creds["alipay_public_key"].source == "secrets file"
    assert "from-file" not in repr(creds["alipay_public_key"])  # a SecretStr prints masked


def test_config_check_masks_credentials_and_names_a_missing_one(tmp_path: Path) -> None:
    path = write(tmp_path, CONFIG, "alipay_cn:\n  alipay_public_key: the-public-key\n")
    env = {"PAYMEND_SECRET_ALIPAY_CN_APP_PRIVATE_KEY": ""}
    result = CliRunner().invoke(main, ["config", "check", str(path)], env=env)
    assert result.exit_code == 1
    assert "credential 'app_private_key' is missing" in result.output
    assert "PAYMEND_SECRET_ALIPAY_CN_APP_PRIVATE_KEY" in result.output
    assert "alipay_public_key: set (14 chars) from the secrets file" in result.output
    assert "the-public-key" not in result.output

    # every credential set, and each a key that parses: the check passes, values masked
    real = alipay_keys().credentials()
    public = "".join(
        line for line in real["alipay_public_key"].splitlines() if not line.startswith("-----")
    )  # bare base64, as Alipay's console gives it
    path = write(tmp_path, CONFIG, f"alipay_cn:\n  alipay_public_key: {public}\n")
    env = {"PAYMEND_SECRET_ALIPAY_CN_APP_PRIVATE_KEY": real["app_private_key"]}
    result = CliRunner().invoke(main, ["config", "check", str(path)], env=env)
    assert result.exit_code == 0, result.output
    assert "app_private_key: set" in result.output and "MIIE" not in result.output
    assert public[20:60] not in result.output
    # a placeholder where a key should be: named, not shown
    env = {"PAYMEND_SECRET_ALIPAY_CN_APP_PRIVATE_KEY": PRIVATE}
    result = CliRunner().invoke(main, ["config", "check", str(path)], env=env)
    assert result.exit_code == 1 and "providers.alipay_cn:" in result.output
    assert "MIIE" not in result.output


def test_the_runtime_refuses_a_channel_without_its_credentials(tmp_path: Path) -> None:
    path = write(tmp_path, CONFIG, "alipay_cn: {}\n")
    with pytest.raises(DataFileError) as info:
        build_channels(load_config(path), path, SystemClock(), environ={})
    assert "PAYMEND_SECRET_ALIPAY_CN_APP_PRIVATE_KEY" in str(info.value)


def test_the_shipped_configuration_needs_no_credentials() -> None:
    from paymend.config import PACKAGED_CONFIG

    providers, sims = build_channels(
        load_config(PACKAGED_CONFIG), PACKAGED_CONFIG, SystemClock(), environ={}
    )
    assert all(isinstance(p, SimulatedProvider) for p in providers.values())
    assert set(providers) == set(sims)
