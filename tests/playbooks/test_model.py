"""The playbooks file: data ops can change, refused with the file and line when wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from paymend.datafiles import DataFileError
from paymend.playbooks.model import DEFAULT_PATH, HoldAction, PauseAction, load_playbooks

GOOD = """\
playbooks:
  - name: bank-down
    description: A bank fails on every channel
    severity: critical
    when: {signal: error_spike, scope: bank, threshold: 0.6, min_calls: 30, for: 5s}
    do: [{pause: {what: bank, method: card}}, alert, open_incident]
    recover: {after: 2m}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "playbooks.yaml"
    path.write_text(text)
    return path


def test_the_shipped_playbooks_load() -> None:
    playbooks = load_playbooks(DEFAULT_PATH)
    names = [p.name for p in playbooks]
    assert "channel-down" in names and "bank-down" in names
    assert all(p.do for p in playbooks)


def test_a_playbook_reads_as_written(tmp_path: Path) -> None:
    (p,) = load_playbooks(write(tmp_path, GOOD))
    assert (p.when.signal, p.when.scope, p.when.for_, p.recover.after) == (
        "error_spike",
        "bank",
        5.0,
        120.0,
    )
    pause = p.do[0]
    assert isinstance(pause, PauseAction) and pause.pause.method == "card"
    assert p.actions == ["pause", "alert", "open_incident"]


@pytest.mark.parametrize(
    ("change", "line", "words"),
    [
        (("signal: error_spike", "signal: error_spik"), 5, "when.signal"),
        (("scope: bank,", "scope: planet,"), 5, "when.scope"),
        (("for: 5s", "for: soon"), 5, "duration"),
        (("severity: critical", "severity: urgent"), 4, "severity"),
        (("alert, open_incident", "alert, page_everyone"), 6, "do.2.action: Input should be"),
        (("{what: bank, method: card}", "{what: region}"), 6, "cannot pause a region"),
        (("recover: {after: 2m}", "recover: {after: 2m, when: never}"), 7, "unknown key"),
        (("name: bank-down", "name: Bank Down"), 2, "name"),
    ],
)
def test_a_mistake_names_the_file_and_line(
    tmp_path: Path, change: tuple[str, str], line: int, words: str
) -> None:
    path = write(tmp_path, GOOD.replace(*change))
    with pytest.raises(DataFileError) as caught:
        load_playbooks(path)
    assert caught.value.line == line
    assert str(caught.value).startswith(f"{path}:{line}:")
    assert words in str(caught.value)


def test_open_circuit_needs_a_channel_scope(tmp_path: Path) -> None:
    path = write(
        tmp_path, GOOD.replace("[{pause: {what: bank, method: card}}, ", "[open_circuit, ")
    )
    with pytest.raises(DataFileError, match="open_circuit needs a channel scope") as caught:
        load_playbooks(path)
    assert caught.value.line == 6


def test_two_playbooks_may_not_share_a_name(tmp_path: Path) -> None:
    twice = GOOD + GOOD.split("\n", 1)[1]
    with pytest.raises(DataFileError, match="a second playbook named 'bank-down'") as caught:
        load_playbooks(write(tmp_path, twice))
    assert caught.value.line == 8


def test_a_hold_reads_as_written_and_must_fit_the_scope(tmp_path: Path) -> None:
    held = GOOD.replace(
        "[{pause: {what: bank, method: card}}, ",
        "[{hold: {what: bank, above: {CNY: 500000, JPY: 50000}}}, ",
    )
    (p,) = load_playbooks(write(tmp_path, held))
    assert p.actions == ["hold", "alert", "open_incident"]
    hold = p.do[0]
    assert isinstance(hold, HoldAction)
    assert hold.hold.above == {"CNY": 500000, "JPY": 50000}
    wrong = held.replace("{what: bank, above", "{what: region, above")
    with pytest.raises(DataFileError, match="cannot hold a region") as caught:
        load_playbooks(write(tmp_path, wrong))
    assert caught.value.line == 6


HOLD = """\
playbooks:
  - name: bank-hold
    description: Large payments of a failing bank wait for review
    severity: major
    when: {signal: error_spike, scope: bank}
    do:
      - hold:
          what: bank
          above:
            CNY: 500000
            JPY: 50000
"""


@pytest.mark.parametrize(
    ("change", "line", "message"),
    [
        # one number for every currency: 500000 is ¥5,000 but also ₩500,000 and 500 KWD
        (
            ("above:\n            CNY: 500000\n            JPY: 50000", "above: 500000"),
            9,
            "per currency",
        ),
        (("JPY: 50000", "YEN: 50000"), 11, "'YEN' is not an ISO 4217 currency"),
        (("JPY: 50000", "jpy: 50000"), 11, "'jpy' is not an ISO 4217 currency"),
        (("JPY: 50000", "JPY: 0"), 11, "greater than 0"),
        (("JPY: 50000", "JPY: 1.5"), 11, "integer"),
        (
            ("above:\n            CNY: 500000\n            JPY: 50000", "above: {}"),
            9,
            "at least 1",
        ),
    ],
)
def test_a_hold_takes_a_threshold_per_currency(
    tmp_path: Path, change: tuple[str, str], line: int, message: str
) -> None:
    assert load_playbooks(write(tmp_path, HOLD))
    with pytest.raises(DataFileError, match=message) as caught:
        load_playbooks(write(tmp_path, HOLD.replace(*change)))
    assert caught.value.line == line


def test_the_hold_example_in_the_shipped_file_is_valid(tmp_path: Path) -> None:
    text = DEFAULT_PATH.read_text()
    example = text[text.index("  # - name: bank-errors-hold-large") :]
    uncommented = "\n".join(line.replace("  # ", "  ", 1) for line in example.splitlines())
    (p,) = load_playbooks(write(tmp_path, "playbooks:\n" + uncommented + "\n"))
    hold = p.do[0]
    assert isinstance(hold, HoldAction) and hold.hold.above == {"CNY": 500000, "JPY": 100000}
