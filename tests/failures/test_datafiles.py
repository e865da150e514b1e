"""Broken catalogue or provider maps refuse to load and name the file and the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from paymend.datafiles import DataFileError
from paymend.failures.catalogue import HERE as CATALOGUE_DIR
from paymend.failures.catalogue import load_catalogue
from paymend.failures.codemaps import HERE as MAPS_DIR
from paymend.failures.codemaps import load_maps

CATALOGUE = (CATALOGUE_DIR / "catalogue.yaml").read_text(encoding="utf-8")


def line_of(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        ("    category: funds\n", "    category: money\n", "unknown category 'money'"),
        ("    action: customer_action\n", "    action: give_up\n", "action"),
        ("    kind: business\n", "    kind: personal\n", "kind"),
    ],
)
def test_a_broken_catalogue_names_the_line(tmp_path: Path, old: str, new: str, words: str) -> None:
    # change the first occurrence after insufficient_funds, and expect that line
    start = CATALOGUE.index("  insufficient_funds:")
    at = CATALOGUE.index(old, start)
    text = CATALOGUE[:at] + new + CATALOGUE[at + len(old) :]
    path = tmp_path / "catalogue.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataFileError) as info:
        load_catalogue(path)
    assert words in str(info.value)
    assert info.value.line == line_of(text[at:], new.strip()) + text[:at].count("\n")


def _maps(tmp_path: Path) -> Path:
    folder = tmp_path / "providers"
    folder.mkdir()
    for f in MAPS_DIR.glob("*.yaml"):
        (folder / f.name).write_text(f.read_text(encoding="utf-8"), encoding="utf-8")
    return folder


def test_a_duplicate_code_names_its_line(tmp_path: Path) -> None:
    folder = _maps(tmp_path)
    sim = folder / "simulator.yaml"
    lines = sim.read_text(encoding="utf-8").splitlines()
    dup = next(i for i, line in enumerate(lines) if '"EXPIRED_CARD"' in line)
    lines.append(lines[dup])
    sim.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataFileError) as info:
        load_maps(load_catalogue(), folder)
    assert info.value.path == str(sim)
    assert info.value.line == len(lines)
    assert "duplicate code 'EXPIRED_CARD'" in str(info.value)


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        ("unified: insufficient_funds", "unified: broke", "unknown unified code 'broke'"),
        ("source: simulator}", "source: nowhere}", "unknown source 'nowhere'"),
        (
            "field: code, unified: insufficient_funds",
            "field: code, unify: x, unified: insufficient_funds",
            "unknown key",
        ),
    ],
)
def test_a_broken_map_names_its_line(tmp_path: Path, old: str, new: str, words: str) -> None:
    folder = _maps(tmp_path)
    sim = folder / "simulator.yaml"
    text = sim.read_text(encoding="utf-8")
    sim.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(DataFileError) as info:
        load_maps(load_catalogue(), folder)
    assert words in str(info.value)
    assert info.value.line == line_of(text, old)
