"""The `paymend` command group and what its commands share: settings from the
environment, the runtime, who the audit log names, clean exits on signals."""

from __future__ import annotations

import getpass
import os
import signal
from typing import TYPE_CHECKING, TypeVar

import click
from pydantic import ValidationError

from paymend import __version__
from paymend.config import Settings
from paymend.datafiles import DataFileError
from paymend.observability import get_logger
from paymend.store.pii import DataKeyError, Vault

if TYPE_CHECKING:
    from paymend.engine.runtime import Runtime

log = get_logger("paymend.cli")

T = TypeVar("T")


def env_settings() -> Settings:
    """Settings from the environment; a bad value names its variable."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"PAYMEND_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in exc.errors()
        )
        raise click.ClickException(f"invalid environment: {problems}") from None


SHUTDOWN_MARGIN_S = 2.0  # beyond the checkout deadline, for requests to finish on SIGTERM


def open_runtime(settings: Settings, role: str = "serve") -> Runtime:
    from paymend.engine.runtime import build_runtime  # the engine: only commands that run it

    try:
        runtime = build_runtime(settings, role=role)
    except DataFileError as exc:
        raise click.ClickException(f"invalid config: {exc}") from None
    except DataKeyError as exc:
        raise click.ClickException(str(exc)) from None
    _announce_pii(runtime.service.pii)
    return runtime


def _announce_pii(vault: Vault) -> None:
    """Say at start how customer contact details are kept: an operator must not find
    out from an empty notification log that emails were never stored."""
    if vault.current is None:
        click.echo(
            "PAYMEND_DATA_KEY is not set: customer email and phone are NOT stored, only "
            "their masked forms (set it to the output of `paymend pii new-key` to keep "
            "them sealed at rest)",
            err=True,
        )
        log.warning("customer_contact_not_stored", reason="PAYMEND_DATA_KEY is not set")
    else:
        click.echo(
            f"customer email and phone are sealed at rest (AES-256-GCM, data key "
            f"{vault.current.id})",
            err=True,
        )


def exit_cleanly_on_signals() -> None:
    """SIGTERM and SIGINT end the process with status 0 once it has stopped cleanly. The
    server handles them first and, once shut down, raises them again: they land here."""

    def stop(_signum: int, _frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="paymend")
def main() -> None:
    """paymend: keeps online payments from failing, and handles the ones that do.

    The database is chosen by PAYMEND_DATABASE_URL (default sqlite:///paymend.db), the
    channels by paymend.yaml (or PAYMEND_CONFIG). Customer email and phone are sealed
    under PAYMEND_DATA_KEY, and not stored without it (see `paymend pii`).
    """


def cli_actor() -> str:
    """Who the audit log names for a command: the user running it on this machine."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no name for this uid (some containers)
        user = f"uid-{os.getuid()}"
    return f"cli:{user}"
