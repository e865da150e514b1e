"""The `paymend` command group and what its commands share: settings from the
environment, the runtime, who the audit log names, clean exits on signals.

The group imports a command's module only when that command runs (`LazyGroup`), and
this module imports what its helpers need only when they are called: `paymend --help`
and `paymend --version` load neither the engine nor the database layer."""

from __future__ import annotations

import getpass
import importlib
import os
import signal
from typing import TYPE_CHECKING, TypeVar

import click

from paymend import __version__

if TYPE_CHECKING:
    from paymend.config import Settings
    from paymend.engine.runtime import Runtime
    from paymend.store.pii import Vault

T = TypeVar("T")


def env_settings() -> Settings:
    """Settings from the environment; a bad value names its variable."""
    from pydantic import ValidationError

    from paymend.config import Settings

    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"PAYMEND_{'_'.join(str(p) for p in e['loc']).upper()}: "
            f"{e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise click.ClickException(f"invalid environment: {problems}") from None


SHUTDOWN_MARGIN_S = 2.0  # beyond the checkout deadline, for requests to finish on SIGTERM


def migrated_database(settings: Settings | None = None) -> str:
    """The configured database's URL, once its schema is this paymend's: a command on a
    database never migrated, or migrated by another version, stops here with what to do
    (`paymend db upgrade`) instead of failing on a missing table."""
    from paymend.store.engines import redacted_url
    from paymend.store.migrate import schema_problem

    url = (settings or env_settings()).database_url
    try:
        problem = schema_problem(url)
    except Exception as exc:  # noqa: BLE001 - a URL that does not parse, a server not there
        cause = getattr(exc, "orig", None) or exc  # the driver's own words, if it spoke
        said = str(cause).strip()
        first = said.splitlines()[0] if said else type(exc).__name__
        raise click.ClickException(
            f"cannot open the database {redacted_url(url)} (PAYMEND_DATABASE_URL): {first}"
        ) from None
    if problem is not None:
        raise click.ClickException(f"{redacted_url(url)}: {problem}")
    return url


def open_runtime(settings: Settings, role: str = "serve") -> Runtime:
    from paymend.datafiles import DataFileError
    from paymend.engine.runtime import build_runtime  # the engine: only commands that run it
    from paymend.store.pii import DataKeyError

    try:
        runtime = build_runtime(settings, role=role)
    except DataFileError as exc:
        raise click.ClickException(f"invalid config: {exc}") from None
    except DataKeyError as exc:
        raise click.ClickException(str(exc)) from None
    try:  # the configuration's mistakes first, then the database's
        migrated_database(settings)
    except click.ClickException:
        runtime.close()
        raise
    _announce_pii(runtime.service.pii)
    return runtime


def _announce_pii(vault: Vault) -> None:
    """Say at start how customer contact details are kept: an operator must not find
    out from an empty notification log that emails were never stored."""
    from paymend.observability import get_logger

    log = get_logger("paymend.cli")
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


class LazyGroup(click.Group):
    """A group whose commands are registered by their modules (`@main.command`), each
    module imported when one of its commands is asked for. The listing of `--help`
    shows each command's first line from COMMANDS, which tests/test_cli.py holds to the
    command's own help, so that listing them imports nothing."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMANDS) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            importlib.import_module(COMMANDS[cmd_name][0])  # registers it on `main`
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(n) for n in names)
        rows = []
        for name in names:
            # a command not imported yet is shortened as click shortens its own help
            command = self.commands.get(name) or click.Command(name, help=COMMANDS[name][1])
            rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


# each top-level command: the module that registers it, and the first line of its help
COMMANDS: dict[str, tuple[str, str]] = {
    "api": ("paymend.cli.serving", "Run the API only; run `paymend worker` processes beside it."),
    "channels": ("paymend.cli.checks", "Check the configured payment channels."),
    "config": ("paymend.cli.checks", "Check the channel, routing and playbook configuration."),
    "db": ("paymend.cli.serving", "Database schema commands."),
    "explain-code": (
        "paymend.cli.checks",
        "Explain what a provider's CODE means, whose problem it is, and what paymend does.",
    ),
    "feedback": (
        "paymend.cli.feedback",
        "Customers' feedback from the status page, the help centre and POST /v1/feedback "
        "(docs/customers.md).",
    ),
    "lab": (
        "paymend.cli.lab",
        "Replay outages and fraud waves in simulated time, against an oracle.",
    ),
    "merchants": ("paymend.cli.access", "Manage merchants and their API keys."),
    "operators": (
        "paymend.cli.access",
        "Manage operators: the people of the ops API, their roles and their keys.",
    ),
    "pii": (
        "paymend.cli.pii",
        "Customer contact details at rest: data keys and their rotation.",
    ),
    "reconcile": (
        "paymend.cli.checks",
        "Compare the store with each provider's settlement report and list every mismatch.",
    ),
    "risk": (
        "paymend.cli.risk",
        "Risk rules: check a rules file, backtest it on stored payments (docs/risk.md).",
    ),
    "serve": (
        "paymend.cli.serving",
        "Run the API and the worker in one process (the default set-up).",
    ),
    "silences": (
        "paymend.cli.silences",
        "Silence ops pages: no message about matching incidents until a time.",
    ),
    "worker": (
        "paymend.cli.serving",
        "Run the worker only: its jobs (status queries, retries, refunds, webhooks) and "
        "reconciliation.",
    ),
}


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
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
