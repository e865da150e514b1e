"""`paymend pii`: the key that seals customer contact details at rest, and re-sealing
them under a new one after a rotation (docs/security.md)."""

from __future__ import annotations

import os
from functools import partial
from typing import Any

import click

from paymend.cli.base import env_settings, main, migrated_database
from paymend.engine.clock import SystemClock
from paymend.observability import configure_logging
from paymend.store.database import Store
from paymend.store.pii import DataKey, DataKeyError


@main.group("pii")
def pii_group() -> None:
    """Customer contact details at rest: data keys and their rotation."""


@pii_group.command("new-key")
def pii_new_key() -> None:
    """Print a new data key (base64 of 32 random bytes) for PAYMEND_DATA_KEY."""
    click.echo(DataKey.generate().encoded())


@pii_group.command("reseal")
@click.option("--batch", default=500, show_default=True, type=click.IntRange(1, 10_000))
def pii_reseal(batch: int) -> None:
    """Re-seal every customer email and phone, and the WeChat openids of notice
    preferences, under the current PAYMEND_DATA_KEY.

    After a rotation: put the old key in PAYMEND_DATA_KEYS_OLD, the new one in
    PAYMEND_DATA_KEY, run this, then drop the old key. Blind indexes are recomputed
    too. Safe to run again; each batch is one transaction and is audit-logged."""
    from paymend.engine.runtime import data_vault
    from paymend.store import controls as audit_repo
    from paymend.store import notice_prefs
    from paymend.store.pii import reseal

    settings = env_settings()
    configure_logging(settings.log_level)
    try:
        vault = data_vault(settings)
    except DataKeyError as exc:
        raise click.ClickException(str(exc)) from None
    if vault.current is None:
        raise click.ClickException("PAYMEND_DATA_KEY is not set: nothing to reseal under")
    key_id = vault.current.id
    actor = f"cli:{os.environ.get('USER') or 'unknown'}"
    store = Store(migrated_database(settings))
    totals = {"payments": 0, "notice_prefs": 0}
    movers = {"payments": reseal, "notice_prefs": notice_prefs.reseal}

    def one_batch(conn: Any, *, table: str) -> int:
        moved = movers[table](conn, vault, batch)
        if moved:
            audit_repo.audit(
                conn,
                SystemClock().now(),
                actor,
                "pii.reseal",
                f"data_key:{key_id}",
                "re-seal customer contact details under the current data key",
                {"rows": moved, "table": table},
            )
        return moved

    try:
        for table in movers:
            while moved := store.run_sync(partial(one_batch, table=table)):
                totals[table] += moved
    except ValueError as exc:  # a row no configured key opens
        done = sum(totals.values())
        raise click.ClickException(f"{exc}; {done} rows were resealed before it") from None
    finally:
        store.close()
    click.echo(
        f"{totals['payments']} payments and {totals['notice_prefs']} WeChat openids "
        f"resealed under data key {key_id}",
        err=True,
    )
