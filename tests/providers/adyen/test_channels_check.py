"""`paymend channels check`: `/paymentMethods`, which moves no money, proves the Adyen
channel's API key and merchant account and that the API answers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from paymend.cli import main
from paymend.config import Settings, secret_env_name
from paymend.sim.adyen_checkout import FaceKeys
from tests.api.conftest import serve_asgi
from tests.providers.adyen.face import face, keys


@pytest.fixture
def face_url() -> Iterator[str]:
    server, thread, url = serve_asgi(face(), Settings(), lifespan="on")
    yield url
    server.should_exit = True
    thread.join(10)


def config(tmp_path: Path, base_url: str, api_key: str | None = None) -> dict[str, str]:
    path = tmp_path / "paymend.yaml"
    channels = {
        "adyen_eu": {
            "type": "adyen",
            "merchant_account": keys().merchant_account,
            "return_url": "https://shop.example.com/back",
            "base_url": base_url,
        },
        "sim_a": {"type": "simulator", "methods": ["card"]},
    }
    path.write_text(yaml.safe_dump({"providers": channels, "routing": ["adyen_eu", "sim_a"]}))
    env = {"PAYMEND_CONFIG": str(path)}
    for name, value in keys().credentials().items():
        env[secret_env_name("adyen_eu", name)] = value
    if api_key is not None:
        env[secret_env_name("adyen_eu", "api_key")] = api_key
    return env


def test_working_credentials_pass(tmp_path: Path, face_url: str) -> None:
    result = CliRunner().invoke(main, ["channels", "check"], env=config(tmp_path, face_url))
    assert result.exit_code == 0, result.output
    assert "adyen_eu (adyen): ok" in result.output and "payment methods" in result.output


def test_a_wrong_key_or_an_unreachable_api_fails(tmp_path: Path, face_url: str) -> None:
    wrong_key = FaceKeys.generate().api_key
    wrong = CliRunner().invoke(
        main, ["channels", "check"], env=config(tmp_path, face_url, wrong_key)
    )
    assert wrong.exit_code == 1 and "http=401" in wrong.output
    down = CliRunner().invoke(
        main, ["channels", "check"], env=config(tmp_path, "http://127.0.0.1:9")
    )
    assert down.exit_code == 1 and "CONNECTION_REFUSED" in down.output
    assert wrong_key not in wrong.output and keys().api_key not in wrong.output + down.output


def test_config_check_masks_and_names_the_secrets(tmp_path: Path) -> None:
    env = config(tmp_path, "http://127.0.0.1:9")
    shown = CliRunner().invoke(main, ["config", "check"], env=env)
    assert shown.exit_code == 0, shown.output
    assert keys().api_key not in shown.output and keys().hmac_key not in shown.output
    del env[secret_env_name("adyen_eu", "hmac_key")]
    missing = CliRunner().invoke(main, ["config", "check"], env=env)
    assert missing.exit_code != 0 and secret_env_name("adyen_eu", "hmac_key") in missing.output
