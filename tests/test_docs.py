"""The README and docs/ stay true to the program: the README's table of commands names
every command, its list of documents names every page of docs/, its links resolve, and
every environment variable paymend reads is documented."""

from __future__ import annotations

import re
from pathlib import Path

from paymend.cli.base import COMMANDS
from paymend.config import Settings

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


def test_every_environment_variable_paymend_reads_is_documented() -> None:
    """The settings (`PAYMEND_<field>`) and the variables read by name (the SMS, SMTP and
    WeChat secrets): an operator finds each in the README or docs/."""
    documented = README.read_text(encoding="utf-8") + "".join(
        page.read_text(encoding="utf-8") for page in (ROOT / "docs").glob("*.md")
    )
    read = {f"PAYMEND_{name.upper()}" for name in Settings.model_fields}
    for module in (ROOT / "src" / "paymend").rglob("*.py"):
        read |= set(re.findall(r"\"(PAYMEND_[A-Z0-9_]+)\"", module.read_text(encoding="utf-8")))
    assert len(read) > 15
    assert sorted(name for name in read if name not in documented) == []
