"""The README stays true to the program and the docs: its table of commands names every
command, its list of documents names every page of docs/, and its links resolve."""

from __future__ import annotations

import re
from pathlib import Path

from paymend.cli.base import COMMANDS

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def _section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    return text[start : text.index("\n## ", start + 1)]


def test_the_readme_command_table_names_every_command() -> None:
    section = _section("Commands")
    named = set(re.findall(r"^\| `paymend ([a-z][a-z-]*)", section, re.MULTILINE))
    # a row may name two: `paymend api` / `paymend worker`
    named |= set(re.findall(r"`paymend ([a-z][a-z-]*)`", section))
    assert set(COMMANDS) - named == set(), "commands the README's table leaves out"
    assert named - set(COMMANDS) == set(), "commands the README names that do not exist"


def test_the_readme_lists_every_document_and_each_link_resolves() -> None:
    listed = re.findall(r"^- \[[^]]+\]\(([^)]+)\)", _section("Documentation"), re.MULTILINE)
    pages = {f"docs/{page.name}" for page in (ROOT / "docs").glob("*.md")}
    assert pages - set(listed) == set(), "pages of docs/ the README's list leaves out"
    linked = re.findall(r"\]\(((?:docs|src|deploy)/[^)#]+)", README.read_text(encoding="utf-8"))
    assert [path for path in linked if not (ROOT / path).exists()] == []
