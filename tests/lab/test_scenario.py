"""Scenario files: the shipped ones load; mistakes are refused with the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from paymend.datafiles import DataFileError
from paymend.lab.scenario import load_scenario

SCENARIOS = sorted(Path(__file__).parents[2].joinpath("scenarios").glob("*.yaml"))
BASE = Path(__file__).parents[2].joinpath("scenarios", "primary-outage.yaml").read_text()


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_shipped_scenarios_load(path: Path) -> None:
    scenario = load_scenario(path)
    assert scenario.name == path.stem
    assert scenario.duration > 0 and scenario.routing


def line_of(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        ("kind: outage}", "kind: meltdown}", "kind"),
        ("kind: outage}", "kind: outage, colour: red}", "unknown key"),
        ("rate: 40 ", "rate: -4 ", "greater than 0"),
        ("duration: 20m", "duration: twenty", "not a duration"),
        ("code: SYSTEM_ERROR, ", "", "needs the `code`"),
        ("channel: sim_a, kind: outage", "channel: sim_z, kind: outage", "unknown channel 'sim_z'"),
        ("bank: CMB,", "bank: HSBC,", "unknown bank 'HSBC'"),
        ("routing: [sim_a, sim_b]", "routing: [sim_a, sim_c]", "sim_c"),
        ("card: 0.6,", "card: 0.7,", "add up to 1"),
        ("seed: 7", "seed: 7\nseed: 8", "duplicate key 'seed'"),
    ],
)
def test_mistakes_name_the_line(tmp_path: Path, old: str, new: str, words: str) -> None:
    assert old in BASE
    text = BASE.replace(old, new, 1)
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    with pytest.raises(DataFileError) as info:
        load_scenario(path)
    assert words in str(info.value), str(info.value)
    assert info.value.line is not None
    assert str(info.value).startswith(f"{path}:{info.value.line}: ")
    if new and "\n" not in new:
        assert info.value.line == line_of(text, new.split(",")[0].split("}")[0]), str(info.value)


def test_lab_run_refuses_a_broken_scenario_naming_the_line(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from paymend.cli import main

    path = tmp_path / "broken.yaml"
    path.write_text(BASE.replace("kind: outage}", "kind: meltdown}", 1))
    result = CliRunner().invoke(main, ["lab", "run", str(path)])
    assert result.exit_code == 1
    assert f"{path}:{line_of(BASE, 'kind: outage}')}:" in result.output


CONNECTORS = Path(__file__).parents[2].joinpath("scenarios", "primary-outage-connectors.yaml")


@pytest.mark.parametrize(
    ("fault", "hit"),
    [
        ("{at: 1m, for: 1m, channel: alipay_cn, kind: credentials_expired}", "alipay_cn"),
        ("{at: 1m, for: 1m, method: wechat_pay, kind: credentials_expired}", "wechatpay_cn"),
    ],
)
def test_an_expired_credential_on_a_connector_channel_is_refused(
    tmp_path: Path, fault: str, hit: str
) -> None:
    # a real connector's keys do not expire and have no refresh: it could never recover
    text = CONNECTORS.read_text().replace("faults:\n", f"faults:\n  - {fault}\n", 1)
    path = tmp_path / "expiring.yaml"
    path.write_text(text)
    with pytest.raises(DataFileError) as info:
        load_scenario(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line_of(text, fault)}: ")
    assert "credentials_expired applies to simulator channels" in message
    assert hit in message and "no refresh" in message


def test_an_expired_credential_on_a_simulator_channel_beside_connectors_loads(
    tmp_path: Path,
) -> None:
    text = (
        CONNECTORS.read_text()
        .replace("  alipay_cn:", "  sim_a: {methods: [alipay]}\n  alipay_cn:", 1)
        .replace(
            "faults:\n",
            "faults:\n  - {at: 1m, for: 1m, channel: sim_a, kind: credentials_expired}\n",
        )
    )
    path = tmp_path / "expiring.yaml"
    path.write_text(text)
    assert load_scenario(path).faults[0].channel == "sim_a"
