"""A broken config refuses to load and names the file and the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from paymend.config import PACKAGED_CONFIG, load_config
from paymend.datafiles import DataFileError, parse_duration

GOOD = """\
seed: 1
providers:
  sim_a:
    type: simulator
    methods: [card]
routing: [sim_a]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "paymend.yaml"
    path.write_text(text)
    return path


def test_the_shipped_default_loads() -> None:
    config = load_config(PACKAGED_CONFIG)
    assert list(config.providers) == ["sim_a", "sim_b"]
    assert config.engine.provider_timeout == 5.0


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        (
            GOOD.replace("methods: [card]", "methods: [card]\n    succes_rate: 0.5"),
            6,
            "unknown key",
        ),
        (
            GOOD.replace("methods: [card]", "methods: [card]\n    timeout_rate: 1.5"),
            6,
            "less than or equal to 1",
        ),
        (GOOD.replace("type: simulator", "type: magic"), 4, "providers.sim_a.type"),
        (GOOD.replace("routing: [sim_a]", "routing: [sim_a, sim_z]"), 1, "sim_z"),
        (GOOD + "seed: 2\n", 7, "duplicate key 'seed'"),
        (GOOD.replace("methods: [card]", "methods: [card"), 6, ""),
        (GOOD + "engine:\n  provider_timeout: soon\n", 8, "not a duration"),
        (GOOD + "instances:\n  heartbeat: 2s\n  dead_after: 3s\n", 9, "twice the heartbeat"),
        (GOOD + "idempotency:\n  claim_expires_after: 30s\n", 8, "longest checkout deadline"),
        (GOOD + "engine:\n  settle_within: 2s\n", 8, "longer than the checkout deadline"),
        (GOOD + "engine:\n  settle_within: 2d\n", 8, "at most 1 day"),
        (GOOD + "worker:\n  concurrency: 0\n", 8, "greater than or equal to 1"),
    ],
)
def test_errors_name_the_line(tmp_path: Path, text: str, line: int, words: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(DataFileError) as info:
        load_config(path)
    assert info.value.path == str(path)
    assert info.value.line == line, str(info.value)
    assert words in str(info.value)
    assert str(info.value).startswith(f"{path}:{line}: ")


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataFileError) as info:
        load_config(tmp_path / "nope.yaml")
    assert "cannot read" in str(info.value)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("250ms", 0.25), ("10s", 10), ("5m", 300), ("2h", 7200), ("1d", 86400), (3, 3.0)],
)
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_banks_and_regions_ops_may_name_are_listed_or_any(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, GOOD)).banks is None
    assert load_config(write(tmp_path, GOOD)).known_regions() is None  # any sound name
    listed = GOOD + "banks: [CMB, ICBC, 招商银行]\nregions: [CN-East]\n"
    config = load_config(write(tmp_path, listed))
    assert config.banks == ["CMB", "ICBC", "招商银行"]
    assert config.known_regions() == frozenset({"CN-East"})
    by_channel = GOOD.replace("methods: [card]", "methods: [card]\n    regions: [CN-North]")
    assert load_config(write(tmp_path, by_channel)).known_regions() == frozenset({"CN-North"})
    with pytest.raises(DataFileError) as caught:
        load_config(write(tmp_path, GOOD + "banks:\n  - CMB\n  - 'IC\\tBC'\n"))
    assert caught.value.line == 9 and "banks.1" in str(caught.value)
