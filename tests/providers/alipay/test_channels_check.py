"""`paymend channels check`: a signed query of an order that cannot exist proves the
Alipay channel's credentials and that its gateway answers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from paymend.cli import main
from paymend.config import Settings, secret_env_name
from paymend.sim.alipay_gateway import GatewayKeys
from tests.api.conftest import serve_asgi
from tests.providers.alipay.face import face, keys


@pytest.fixture
def gateway_url() -> Iterator[str]:
    gateway = face()
    server, thread, url = serve_asgi(gateway, Settings(), lifespan="on")
    yield f"{url}/gateway.do"
    server.should_exit = True
    thread.join(10)


def config(tmp_path: Path, base_url: str) -> dict[str, str]:
    path = tmp_path / "paymend.yaml"
    channels = {
        "alipay_cn": {"type": "alipay", "app_id": keys().app_id, "base_url": base_url},
        "sim_a": {"type": "simulator", "methods": ["card"]},
    }
    path.write_text(yaml.safe_dump({"providers": channels, "routing": ["alipay_cn", "sim_a"]}))
    env = {"PAYMEND_CONFIG": str(path)}
    for name, value in keys().credentials().items():
        env[secret_env_name("alipay_cn", name)] = value
    return env


def test_working_credentials_pass(tmp_path: Path, gateway_url: str) -> None:
    result = CliRunner().invoke(main, ["channels", "check"], env=config(tmp_path, gateway_url))
    assert result.exit_code == 0, result.output
    assert "alipay_cn (alipay): ok" in result.output and "ACQ.TRADE_NOT_EXIST" in result.output
    assert "sim_a (simulator): -: simulated" in result.output


def test_a_wrong_key_or_an_unreachable_gateway_fails(tmp_path: Path, gateway_url: str) -> None:
    env = config(tmp_path, gateway_url)
    env[secret_env_name("alipay_cn", "app_private_key")] = GatewayKeys.generate().credentials()[
        "app_private_key"
    ]
    wrong = CliRunner().invoke(main, ["channels", "check"], env=env)
    assert wrong.exit_code == 1 and "isv.invalid-signature" in wrong.output
    down = CliRunner().invoke(
        main, ["channels", "check"], env=config(tmp_path, "http://127.0.0.1:9/gateway.do")
    )
    assert down.exit_code == 1 and "CONNECTION_REFUSED" in down.output
    assert "PRIVATE KEY" not in wrong.output + down.output


def test_a_key_that_does_not_parse_is_named_by_config_check_and_at_start(tmp_path: Path) -> None:
    """A private key that is neither PEM nor base64 (a value pasted wrong) fails `config
    check` and the server's start, naming the channel, never showing the value."""
    env = config(tmp_path, "http://127.0.0.1:9/gateway.do")
    assert CliRunner().invoke(main, ["config", "check"], env=env).exit_code == 0
    env[secret_env_name("alipay_cn", "app_private_key")] = "pasted-the-wrong-thing"
    checked = CliRunner().invoke(main, ["config", "check"], env=env)
    assert checked.exit_code == 1 and "Traceback" not in checked.output
    assert "providers.alipay_cn: the private key is neither PEM nor base64" in checked.output
    assert "pasted-the-wrong-thing" not in checked.output
    started = CliRunner().invoke(
        main, ["worker"], env={**env, "PAYMEND_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    )
    assert started.exit_code == 1
    assert "providers.alipay_cn: the private key is neither PEM nor base64" in started.output
