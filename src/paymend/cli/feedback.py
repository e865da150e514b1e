"""`paymend feedback report`: what customers said, grouped by what hurt them."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import click

from paymend.cli.base import main, migrated_database
from paymend.observability import configure_logging


@main.group()
def feedback() -> None:
    """Customers' feedback from the status page, the help centre and POST /v1/feedback
    (docs/customers.md)."""


@feedback.command("report")
@click.option(
    "--days",
    type=click.IntRange(1, 366),
    default=7,
    show_default=True,
    help="The period: the last DAYS, compared with the DAYS before.",
)
@click.option("--json", "as_json", is_flag=True, help="The report as one JSON object.")
def report(days: int, as_json: bool) -> None:
    """The pain-point report of PAYMEND_DATABASE_URL: feedback grouped by failure code,
    channel, method, bank and step, most first, with counts, the change against the
    period before, the unhappy ones (rated 1-2 or "did not help"), the reasons given and
    the latest words (masked as stored).

    \b
    Examples:
      paymend feedback report
      paymend feedback report --days 30 --json
    """
    from paymend.engine.feedback import as_dict, as_text
    from paymend.engine.feedback import report as build
    from paymend.store.database import Store

    configure_logging("WARNING")
    store = Store(migrated_database())
    try:
        found = asyncio.run(build(store, datetime.now(UTC), days))
    finally:
        store.close()
    click.echo(json.dumps(as_dict(found), ensure_ascii=False) if as_json else as_text(found))
