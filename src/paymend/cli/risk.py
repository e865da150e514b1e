"""`paymend risk check` and `risk backtest`: is a rules file valid, and what would it
have done to the payments already stored."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from paymend.cli.base import main, migrated_database
from paymend.datafiles import DataFileError
from paymend.observability import configure_logging

if TYPE_CHECKING:
    from paymend.risk.rules import RuleSet


@main.group()
def risk() -> None:
    """Risk rules: check a rules file, backtest it on stored payments (docs/risk.md)."""


def _load(path: Path) -> RuleSet:
    from paymend.risk.rules import load

    try:
        return load(path)
    except DataFileError as exc:
        raise click.ClickException(str(exc)) from None


@risk.command("check")
@click.argument("rules", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def check(rules: Path) -> None:
    """Load RULES.yaml as the server would; print its version and rules, or the line of
    the first mistake (exit status 1)."""
    ruleset = _load(rules)
    shadow = " (shadow)" if ruleset.shadow else ""
    click.echo(f"{rules}: version {ruleset.version}{shadow}, {len(ruleset.rules)} rules")
    for r in ruleset.rules:
        click.echo(f"  {r.action.value:<9} {r.name}{' (shadow)' if r.shadow else ''}")


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("an ISO 8601 date or time, e.g. 2026-11-01") from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


@risk.command("backtest")
@click.argument("rules", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--since", help="Only payments decided at or after this ISO 8601 date/time.")
@click.option("--json", "as_json", is_flag=True, help="The report as one JSON object.")
def backtest(rules: Path, since: str | None, as_json: bool) -> None:
    """Replay the stored payments (of PAYMEND_DATABASE_URL) through RULES.yaml, beside
    the live decisions: per rule, how many payments it would match, and among them how
    many later succeeded (the false-positive estimate) or were charged back.

    \b
    Examples:
      paymend risk backtest candidate.yaml
      paymend risk backtest candidate.yaml --since 2026-11-01 --json
    """
    from paymend.engine.risk_backtest import backtest as run_backtest
    from paymend.risk.backtest import as_text
    from paymend.store.database import Store

    configure_logging("WARNING")
    candidate = _load(rules)
    store = Store(migrated_database())
    try:
        report = asyncio.run(run_backtest(store, candidate, _since(since)))
    finally:
        store.close()
    click.echo(json.dumps(report.as_dict()) if as_json else as_text(report))
