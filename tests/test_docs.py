"""The README stays true to the program: its table of commands names every command."""

from __future__ import annotations

import re
from pathlib import Path

from paymend.cli.base import COMMANDS

README = Path(__file__).resolve().parents[1] / "README.md"


def _commands_section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("\n## Commands\n")
    return text[start : text.index("\n## ", start + 1)]


def test_the_readme_command_table_names_every_command() -> None:
    section = _commands_section()
    named = set(re.findall(r"^\| `paymend ([a-z][a-z-]*)", section, re.MULTILINE))
    # a row may name two: `paymend api` / `paymend worker`
    named |= set(re.findall(r"`paymend ([a-z][a-z-]*)`", section))
    assert set(COMMANDS) - named == set(), "commands the README's table leaves out"
    assert named - set(COMMANDS) == set(), "commands the README names that do not exist"
