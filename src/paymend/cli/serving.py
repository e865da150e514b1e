"""`paymend serve`, `api`, `worker` and `db upgrade`: running paymend."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from pathlib import Path

import click

from paymend import __version__
from paymend.cli.base import (
    SHUTDOWN_MARGIN_S,
    cli_actor,
    env_settings,
    exit_cleanly_on_signals,
    main,
    open_runtime,
)
from paymend.datafiles import DataFileError
from paymend.engine.access import AccessService
from paymend.engine.clock import SystemClock
from paymend.engine.collector import spare_collector
from paymend.engine.ids import IdFactory
from paymend.observability import configure_logging
from paymend.observability.tracing import TracingSettingInvalid
from paymend.store import merchants
from paymend.store.database import Store
from paymend.store.engines import redacted_url
from paymend.store.migrate import upgrade


def _serve(host: str, port: int, *, run_worker: bool, demo_key_file: Path | None) -> None:
    """Serve until SIGTERM or SIGINT, then stop cleanly: no new connections, requests in
    flight get the checkout deadline plus a margin to finish, the worker stops (jobs it
    held are released), the instance is marked stopped; exit status 0."""
    import uvicorn

    from paymend.api.app import create_app
    from paymend.api.server import uvicorn_options

    exit_cleanly_on_signals()
    settings = env_settings()
    configure_logging(settings.log_level)
    runtime = open_runtime(settings, "serve" if run_worker else "api")
    if demo_key_file is not None:
        _ensure_demo_merchant(runtime.store, demo_key_file)
        _ensure_demo_operator(runtime.store, demo_key_file, f"http://{host}:{port}")
    try:
        app = create_app(runtime, run_worker=run_worker)
    except DataFileError as exc:  # the customers' FAQ or help texts (docs/customers.md)
        runtime.close()
        raise click.ClickException(f"invalid config: {exc}") from None
    except TracingSettingInvalid as exc:  # OTEL_TRACES_EXPORTER (README: Configuration)
        runtime.close()
        raise click.ClickException(str(exc)) from None
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        timeout_graceful_shutdown=round(
            runtime.config.engine.checkout_deadline + SHUTDOWN_MARGIN_S
        ),
        **uvicorn_options(settings),
    )

    class Server(uvicorn.Server):
        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            app.state.stopping.set()  # the worker stops while requests in flight finish
            await super().shutdown(sockets)

    click.echo(f"paymend {__version__} on http://{host}:{port}  (API docs: /docs)", err=True)
    spare_collector()  # what start-up built frozen, young collections rarer
    try:
        Server(config).run()
    finally:
        runtime.close()


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option(
    "--demo-key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Create a merchant 'demo' on first start and keep its API key in this file; "
    "and a console operator 'demo' (admin), its password in FILE-console.",
)
def serve(host: str, port: int, demo_key_file: Path | None) -> None:
    """Run the API and the worker in one process (the default set-up).

    SIGTERM (or Ctrl-C) stops it cleanly: no new connections, requests in flight get the
    checkout deadline plus 2s, running jobs get worker.stop_grace and are then released
    to other workers, and it exits 0."""
    _serve(host, port, run_worker=True, demo_key_file=demo_key_file)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def api(host: str, port: int) -> None:
    """Run the API only; run `paymend worker` processes beside it.

    SIGTERM stops it cleanly: no new connections, requests in flight get the checkout
    deadline plus 2s, exit 0."""
    _serve(host, port, run_worker=False, demo_key_file=None)


@main.command()
def worker() -> None:
    """Run the worker only: its jobs (status queries, retries, refunds, webhooks) and
    reconciliation. Several may run on PostgreSQL. SIGTERM stops it cleanly: running jobs
    get `worker.stop_grace`, then are cancelled and released to the other workers."""
    exit_cleanly_on_signals()
    settings = env_settings()
    configure_logging(settings.log_level)
    runtime = open_runtime(settings, "worker")

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with runtime.alive():
            await runtime.worker.run(stop)

    try:
        asyncio.run(run())
    finally:
        runtime.close()


@main.group()
def db() -> None:
    """Database schema commands."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Create or migrate the schema to the latest version."""
    url = env_settings().database_url
    try:
        upgrade(url, revision)
    except Exception as exc:  # noqa: BLE001 - report any driver error plainly
        raise click.ClickException(f"migration failed on {redacted_url(url)}: {exc}") from None
    click.echo(f"database at {redacted_url(url)} is up to date", err=True)


def _ensure_demo_merchant(store: Store, key_file: Path) -> None:
    now = SystemClock().now()
    if key_file.exists():
        key = key_file.read_text().strip()
        if store.run_sync(lambda conn: merchants.by_api_key(conn, key, now)) is not None:
            click.echo(f"demo merchant key: {key_file}", err=True)
            return
    access = AccessService(store, SystemClock(), IdFactory())
    if store.run_sync(lambda conn: merchants.by_name(conn, "demo")) is None:
        merchant, key = asyncio.run(access.create_merchant("demo", cli_actor()))
        did = "created merchant 'demo'"
    else:  # names are unique: the demo merchant gets a new key instead
        why = f"{key_file} was missing or its key no longer works"
        merchant, issued = asyncio.run(access.rotate_merchant_key("demo", cli_actor(), reason=why))
        key, did = issued.secret, "gave merchant 'demo' a new key"
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    click.echo(f"{did} ({merchant.id}); its key is in {key_file}", err=True)


def _ensure_demo_operator(store: Store, key_file: Path, url: str) -> None:
    """The console's demo log-in: operator 'demo' (admin) with a password kept beside the
    demo key (FILE-console, readable by its owner only), printed at every start."""
    import secrets

    from paymend.console.accounts import Accounts, verify_password
    from paymend.domain.roles import Role
    from paymend.store.operators import with_password

    login_file = key_file.with_name(key_file.name + "-console")
    password = login_file.read_text().strip() if login_file.exists() else ""
    accounts = Accounts(store, SystemClock(), 0, 0)
    found = store.run_sync(lambda conn: with_password(conn, "demo"))
    if found is None:
        access = AccessService(store, SystemClock(), IdFactory())
        asyncio.run(access.create_operator("demo", Role.ADMIN, cli_actor()))
    if found is None or found[1] is None or not verify_password(found[1], password):
        password = secrets.token_urlsafe(12)
        asyncio.run(accounts.set_password("demo", password, cli_actor()))
        fd = os.open(login_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(password + "\n")
    click.echo(
        f"console: {url}/console  operator 'demo', password {password} (kept in {login_file})",
        err=True,
    )
