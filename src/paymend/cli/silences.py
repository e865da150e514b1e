"""`paymend silences`: hold ops pages back about a playbook, channel, bank or region
until a time (engine/silences.py). Each change is audit-logged as cli:<user>."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import click

from paymend.cli.base import cli_actor, env_settings, main, migrated_database
from paymend.domain.errors import PaymendError
from paymend.engine.clock import SystemClock
from paymend.engine.ids import IdFactory
from paymend.engine.silences import SilenceService
from paymend.observability import configure_logging
from paymend.store.database import Store
from paymend.store.ops_alerts import Silence

T = TypeVar("T")


@main.group("silences")
def silences_group() -> None:
    """Silence ops pages: no message about matching incidents until a time.

    The incidents, their actions and the metric go on; only the pages wait, and an
    incident still open when the silence ends is paged then."""


@silences_group.command("add")
@click.option("--playbook", help="Incidents this playbook opened.")
@click.option("--channel", help="Incidents whose scope is this payment channel.")
@click.option("--bank", help="Incidents whose scope is this bank.")
@click.option("--region", help="Incidents whose scope is this region.")
@click.option("--for", "length", help="How long, e.g. 30m, 2h (or --until).")
@click.option("--until", "until_text", help="Until when, ISO 8601 with a zone.")
@click.option("--reason", required=True, help="Why, for the audit log.")
def silences_add(
    playbook: str | None,
    channel: str | None,
    bank: str | None,
    region: str | None,
    length: str | None,
    until_text: str | None,
    reason: str,
) -> None:
    """Silence pages about incidents matching every option given."""
    until = _until(length, until_text)
    matchers = {"playbook": playbook, "channel": channel, "bank": bank, "region": region}
    made = _silences(lambda s: s.add(matchers, until, reason, cli_actor()))
    click.echo(json.dumps(made.as_dict()))


@silences_group.command("list")
def silences_list() -> None:
    """The active silences, one JSON object a line."""
    for s in _silences(lambda s: s.active()):
        click.echo(json.dumps(s.as_dict()))


@silences_group.command("end")
@click.argument("silence_id")
@click.option("--reason", required=True, help="Why, for the audit log.")
def silences_end(silence_id: str, reason: str) -> None:
    """End silence SILENCE_ID now: pages resume on the worker's next sweep."""
    ended: Silence = _silences(lambda s: s.end(silence_id, reason, cli_actor()))
    click.echo(json.dumps(ended.as_dict()))


def _until(length: str | None, until_text: str | None) -> datetime:
    if (length is None) == (until_text is None):
        raise click.UsageError("give one of --for and --until")
    if length is not None:
        from paymend.datafiles import parse_duration

        try:
            return datetime.now(UTC) + timedelta(seconds=parse_duration(length))
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--for") from None
    try:
        until = datetime.fromisoformat(str(until_text))
    except ValueError:
        raise click.BadParameter("an ISO 8601 time", param_hint="--until") from None
    if until.tzinfo is None:
        raise click.BadParameter("give a zone, e.g. 2026-12-01T18:00+08:00", param_hint="--until")
    return until


def _silences(use: Callable[[SilenceService], Coroutine[Any, Any, T]]) -> T:
    settings = env_settings()
    configure_logging(settings.log_level, sys.stderr)  # stdout is the silences' JSON
    store = Store(migrated_database(settings), inline=True)
    try:
        return asyncio.run(use(SilenceService(store, SystemClock(), IdFactory())))
    except PaymendError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        store.close()
