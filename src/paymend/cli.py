"""The `paymend` command."""

from __future__ import annotations

import asyncio
import getpass
import os
import signal
import socket
import sys
from collections.abc import Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from pydantic import ValidationError

from paymend import __version__
from paymend.config import Settings, load_config
from paymend.datafiles import DataFileError
from paymend.domain.errors import PaymendError
from paymend.domain.roles import ROLE_NAMES, Role
from paymend.engine.access import AccessService, Issued
from paymend.engine.clock import SystemClock
from paymend.engine.ids import IdFactory
from paymend.engine.runtime import Runtime, build_runtime
from paymend.observability import configure_logging, get_logger
from paymend.playbooks.model import load_playbooks
from paymend.store import merchants
from paymend.store.database import Store
from paymend.store.keys import ApiKey
from paymend.store.migrate import upgrade
from paymend.store.pii import DataKey, DataKeyError, Vault

log = get_logger("paymend.cli")

T = TypeVar("T")


def _settings() -> Settings:
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


def _runtime(settings: Settings, role: str = "serve") -> Runtime:
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


def _exit_cleanly_on_signals() -> None:
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


def _serve(host: str, port: int, *, run_worker: bool, demo_key_file: Path | None) -> None:
    """Serve until SIGTERM or SIGINT, then stop cleanly: no new connections, requests in
    flight get the checkout deadline plus a margin to finish, the worker stops (jobs it
    held are released), the instance is marked stopped; exit status 0."""
    import uvicorn

    from paymend.api.app import create_app
    from paymend.api.server import uvicorn_options

    _exit_cleanly_on_signals()
    settings = _settings()
    configure_logging(settings.log_level)
    runtime = _runtime(settings, "serve" if run_worker else "api")
    if demo_key_file is not None:
        _ensure_demo_merchant(runtime.store, demo_key_file)
    app = create_app(runtime, run_worker=run_worker)
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
    help="Create a merchant 'demo' on first start and keep its API key in this file.",
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
    _exit_cleanly_on_signals()
    settings = _settings()
    configure_logging(settings.log_level)
    runtime = _runtime(settings, "worker")

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
    url = _settings().database_url
    try:
        upgrade(url, revision)
    except Exception as exc:  # noqa: BLE001 - report any driver error plainly
        raise click.ClickException(f"migration failed on {_redact(url)}: {exc}") from None
    click.echo(f"database at {_redact(url)} is up to date", err=True)


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
    """Re-seal every customer email and phone under the current PAYMEND_DATA_KEY.

    After a rotation: put the old key in PAYMEND_DATA_KEYS_OLD, the new one in
    PAYMEND_DATA_KEY, run this, then drop the old key. Blind indexes are recomputed
    too. Safe to run again; each batch is one transaction and is audit-logged."""
    from paymend.engine.runtime import data_vault
    from paymend.store import controls as audit_repo
    from paymend.store.pii import reseal

    settings = _settings()
    configure_logging(settings.log_level)
    try:
        vault = data_vault(settings)
    except DataKeyError as exc:
        raise click.ClickException(str(exc)) from None
    if vault.current is None:
        raise click.ClickException("PAYMEND_DATA_KEY is not set: nothing to reseal under")
    key_id = vault.current.id
    actor = f"cli:{os.environ.get('USER') or 'unknown'}"
    store = Store(settings.database_url)
    total = 0

    def one_batch(conn: Any) -> int:
        moved = reseal(conn, vault, batch)
        if moved:
            audit_repo.audit(
                conn,
                SystemClock().now(),
                actor,
                "pii.reseal",
                f"data_key:{key_id}",
                "re-seal customer contact details under the current data key",
                {"rows": moved},
            )
        return moved

    try:
        while moved := store.run_sync(one_batch):
            total += moved
    except ValueError as exc:  # a row no configured key opens
        raise click.ClickException(f"{exc}; {total} rows were resealed before it") from None
    finally:
        store.close()
    click.echo(f"{total} payments resealed under data key {key_id}", err=True)


_OVERLAP = click.option(
    "--overlap",
    default="24h",
    show_default=True,
    help="How long the other keys keep working (e.g. 1h, 7d; 0 stops them now).",
)
_EXPIRES_IN = click.option(
    "--expires-in", default=None, help="The new key's lifetime (e.g. 90d); default: none."
)
_REASON = click.option("--reason", default=None, help="Why, for the audit log.")


@main.group("merchants")
def merchants_group() -> None:
    """Manage merchants and their API keys."""


@merchants_group.command("create")
@click.argument("name")
@click.option(
    "--support-contact",
    default=None,
    help="How customers reach the shop, quoted in failure messages (e.g. 'support@shop.cn').",
)
@click.option(
    "--webhook-url",
    default=None,
    help="Where payment events are POSTed, signed; the signing secret is printed once.",
)
@click.option(
    "--checkout-deadline",
    default=None,
    help="How long a checkout call may take before answering 'processing' (e.g. 3s).",
)
@click.option(
    "--compensation-cap-percent",
    type=click.IntRange(0, 1000),
    default=None,
    help="What support may grant for one payment in coupons and credits together, as a "
    "percentage of its amount (default 100).",
)
def merchants_create(
    name: str,
    support_contact: str | None,
    webhook_url: str | None,
    checkout_deadline: str | None,
    compensation_cap_percent: int | None,
) -> None:
    """Create merchant NAME and print its secret API key (shown only this once)."""
    from paymend.datafiles import parse_duration
    from paymend.notify.webhooks import new_secret

    settings: dict[str, object] = {}
    if checkout_deadline:
        try:
            seconds = parse_duration(checkout_deadline)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--checkout-deadline") from None
        if not 0.1 <= seconds <= 60:
            raise click.BadParameter("between 100ms and 60s", param_hint="--checkout-deadline")
        settings["checkout_deadline_s"] = seconds
    if support_contact:
        settings["support_contact"] = support_contact
    if compensation_cap_percent is not None:
        settings["compensation_cap_percent"] = compensation_cap_percent
    if webhook_url:
        if not webhook_url.startswith(("http://", "https://")):
            raise click.BadParameter("an http(s) URL", param_hint="--webhook-url")
        settings["webhook_url"] = webhook_url
        settings["webhook_secret"] = new_secret()
    if not name.strip() or len(name) > 200:
        raise click.BadParameter("a name of 1 to 200 characters", param_hint="NAME")
    merchant, key = _access(lambda a: a.create_merchant(name, _cli_actor(), settings or None))
    click.echo(f"merchant {merchant.id} ({merchant.name})", err=True)
    if webhook_url:
        click.echo(f"webhook signing secret: {settings['webhook_secret']}", err=True)
    click.echo("secret key (store it now, it is not shown again):", err=True)
    click.echo(key)


@merchants_group.group("keys")
def merchant_keys_group() -> None:
    """List, rotate and revoke a merchant's API keys (MERCHANT: its id or name).

    Each change is audit-logged as cli:<your user name>."""


@merchant_keys_group.command("list")
@click.argument("merchant")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per key.")
def merchant_keys_list(merchant: str, as_json: bool) -> None:
    """List MERCHANT's keys: hint, status, created, expires, revoked, last used."""
    found, listed = _access(lambda a: a.merchant_keys(merchant))
    click.echo(f"merchant {found.id} ({found.name})", err=True)
    _print_keys(listed, as_json)


@merchant_keys_group.command("rotate")
@click.argument("merchant")
@_OVERLAP
@_EXPIRES_IN
@_REASON
def merchant_keys_rotate(
    merchant: str, overlap: str, expires_in: str | None, reason: str | None
) -> None:
    """Give MERCHANT a new key (printed once); its other keys keep working for the
    overlap, then expire."""
    overlap_s, lifetime = _duration(overlap, "--overlap"), _lifetime(expires_in)
    found, issued = _access(
        lambda a: a.rotate_merchant_key(merchant, _cli_actor(), overlap_s, lifetime, reason)
    )
    click.echo(f"merchant {found.id} ({found.name})", err=True)
    _print_issued(issued)


@merchant_keys_group.command("revoke")
@click.argument("merchant")
@click.argument("key_id", required=False)
@click.option("--all", "every", is_flag=True, help="Revoke every key still working.")
@_REASON
def merchant_keys_revoke(
    merchant: str, key_id: str | None, every: bool, reason: str | None
) -> None:
    """Revoke KEY_ID of MERCHANT (or --all of its keys). API processes stop accepting it
    within 5 seconds."""
    target = _one_or_all(key_id, every)
    done = _access(lambda a: a.revoke_merchant_keys(merchant, target, _cli_actor(), reason))
    for key in done:
        click.echo(f"revoked {key.id} ({key.hint})")


@main.group("operators")
def operators_group() -> None:
    """Manage operators: the people of the ops API, their roles and their keys.

    \b
    Roles (each may also do what the ones above it may):
      viewer   reads controls, incidents and the audit log
      support  also looks up payments (customer service)
      ops      also pauses, forces routes, holds and reviews payments, handles incidents
      admin    also manages operators and every key
    Each change is audit-logged as cli:<your user name>.
    """


@operators_group.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLE_NAMES), required=True, help="What NAME may do.")
@_EXPIRES_IN
def operators_create(name: str, role: str, expires_in: str | None) -> None:
    """Create operator NAME (lower case, e.g. ops-lin) and print their key (shown once)."""
    lifetime = _lifetime(expires_in)
    op, issued = _access(lambda a: a.create_operator(name, Role(role), _cli_actor(), lifetime))
    click.echo(f"operator {op.name} ({op.role.value}); audit log: {op.actor}", err=True)
    _print_issued(issued)


@operators_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per operator.")
def operators_list(as_json: bool) -> None:
    """List operators, their roles and keys."""
    import json

    from paymend.api.ops_views import key_json, operator_json  # as the ops API shows them

    found = _access(lambda a: a.operators())
    now = SystemClock().now()
    for op, listed in found:
        if as_json:
            data = {**operator_json(op), "keys": [key_json(k, now) for k in listed]}
            click.echo(json.dumps(data))
            continue
        click.echo(f"{op.name} ({op.role.value})")
        for key in listed:
            click.echo("  " + _key_line(key, now))
    if not found and not as_json:
        click.echo("no operators yet: paymend operators create NAME --role admin", err=True)


@operators_group.command("rotate")
@click.argument("name")
@_OVERLAP
@_EXPIRES_IN
@_REASON
def operators_rotate(name: str, overlap: str, expires_in: str | None, reason: str | None) -> None:
    """Give operator NAME a new key (printed once); their other keys keep working for the
    overlap, then expire."""
    overlap_s, lifetime = _duration(overlap, "--overlap"), _lifetime(expires_in)
    _, issued = _access(
        lambda a: a.rotate_operator_key(name, _cli_actor(), overlap_s, lifetime, reason)
    )
    _print_issued(issued)


@operators_group.command("revoke")
@click.argument("name")
@click.argument("key_id", required=False)
@click.option("--all", "every", is_flag=True, help="Revoke every key still working.")
@_REASON
def operators_revoke(name: str, key_id: str | None, every: bool, reason: str | None) -> None:
    """Revoke KEY_ID of operator NAME (or --all, when they leave): it stops at once."""
    target = _one_or_all(key_id, every)
    done = _access(lambda a: a.revoke_operator_keys(name, target, _cli_actor(), reason))
    for key in done:
        click.echo(f"revoked {key.id} ({key.hint})")


@operators_group.command("role")
@click.argument("name")
@click.argument("role", type=click.Choice(ROLE_NAMES))
@_REASON
def operators_role(name: str, role: str, reason: str | None) -> None:
    """Give operator NAME another ROLE."""
    op = _access(lambda a: a.set_role(name, Role(role), _cli_actor(), reason))
    click.echo(f"{op.name} is now {op.role.value}")


def _access(use: Callable[[AccessService], Coroutine[Any, Any, T]]) -> T:
    """Run one use case of engine/access.py on the configured database."""
    store = Store(_settings().database_url, inline=True)
    try:
        return asyncio.run(use(AccessService(store, SystemClock(), IdFactory())))
    except PaymendError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        store.close()


def _cli_actor() -> str:
    """Who the audit log names for a command: the user running it on this machine."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no name for this uid (some containers)
        user = f"uid-{os.getuid()}"
    return f"cli:{user}"


def _duration(text: str, option: str) -> float:
    from paymend.datafiles import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


def _lifetime(text: str | None) -> float | None:
    return None if text is None else _duration(text, "--expires-in")


def _one_or_all(key_id: str | None, every: bool) -> str | None:
    if (key_id is None) == (not every):
        raise click.UsageError("give KEY_ID or --all (not both)")
    return key_id


def _key_line(key: ApiKey, now: datetime) -> str:
    def ts(value: datetime | None) -> str:
        return value.strftime("%Y-%m-%d %H:%M") if value else "-"

    return (
        f"{key.id}  {key.hint:<10} {key.status(now):<8} created {ts(key.created_at)}"
        f"  expires {ts(key.expires_at)}  revoked {ts(key.revoked_at)}"
        f"  last used {ts(key.last_used_at)}"
    )


def _print_keys(listed: list[ApiKey], as_json: bool) -> None:
    import json

    from paymend.api.ops_views import key_json  # as the ops API shows them

    now = SystemClock().now()
    for key in listed:
        click.echo(json.dumps(key_json(key, now)) if as_json else _key_line(key, now))


def _print_issued(issued: Issued) -> None:
    for old in issued.expiring:
        click.echo(f"{old.id} ({old.hint}) keeps working until {old.expires_at}", err=True)
    click.echo(f"new key {issued.key.id} (store it now, it is not shown again):", err=True)
    click.echo(issued.secret)


@main.command("explain-code")
@click.argument("provider", required=False)
@click.argument("code", required=False)
@click.option("--locale", default="en", show_default=True, help="Language of the customer message.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per code.")
@click.option("--stdin", "from_stdin", is_flag=True, help="Read 'PROVIDER CODE' pairs, one a line.")
@click.option("--unmapped", is_flag=True, help="List codes seen in the database that no map knows.")
def explain_code(
    provider: str | None,
    code: str | None,
    locale: str,
    as_json: bool,
    from_stdin: bool,
    unmapped: bool,
) -> None:
    """Explain what a provider's CODE means, whose problem it is, and what paymend does.

    \b
    Examples:
      paymend explain-code alipay ACQ.BUYER_BALANCE_NOT_ENOUGH --locale zh-CN
      paymend explain-code card 51 --json
      printf 'stripe do_not_honor\\nwechatpay NOTENOUGH\\n' | paymend explain-code --stdin --json
    """
    import json

    from paymend.failures.classify import default_classifier
    from paymend.failures.explain import as_text, explain

    try:
        classifier = default_classifier()
    except DataFileError as exc:
        raise click.ClickException(f"invalid failure data: {exc}") from None
    chosen = classifier.messages.negotiate(locale)
    if unmapped:
        _print_unmapped(as_json)
        return
    pairs: list[tuple[str, str]] = []
    if from_stdin:
        for number, line in enumerate(sys.stdin, start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            parts = line.split()
            if len(parts) != 2:
                raise click.ClickException(f"<stdin>:{number}: expected 'PROVIDER CODE'")
            pairs.append((parts[0], parts[1]))
    elif provider and code:
        pairs.append((provider, code))
    else:
        raise click.UsageError("give PROVIDER CODE, or --stdin, or --unmapped")
    for prov, raw in pairs:
        if prov not in classifier.maps:
            known = ", ".join(sorted(p for p in classifier.maps if p != "transport"))
            raise click.ClickException(f"unknown provider '{prov}' (known: {known})")
        info = explain(classifier, prov, raw, chosen)
        click.echo(json.dumps(info, ensure_ascii=False) if as_json else as_text(info))


def _print_unmapped(as_json: bool) -> None:
    import json

    import sqlalchemy as sa

    from paymend.store.tables import attempts

    store = Store(_settings().database_url)
    try:
        rows = store.run_sync(
            lambda conn: conn.execute(
                sa.select(
                    attempts.c.provider,
                    attempts.c.raw_code,
                    sa.func.count().label("seen"),
                    sa.func.max(attempts.c.created_at).label("last_seen"),
                )
                .where(attempts.c.unified_code == "unrecognized_response")
                .group_by(attempts.c.provider, attempts.c.raw_code)
                .order_by(sa.func.count().desc())
            ).all()
        )
    except PaymendError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        store.close()
    for row in rows:
        item = {
            "provider": row.provider,
            "raw_code": row.raw_code,
            "seen": row.seen,
            "last_seen": str(row.last_seen),
        }
        click.echo(
            json.dumps(item)
            if as_json
            else f"{row.provider} {row.raw_code}: seen {row.seen} times, last {row.last_seen}"
        )
    if not rows and not as_json:
        click.echo("no unmapped codes seen", err=True)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
@click.option(
    "--fix",
    is_flag=True,
    help="Settle charges the store missed (counted if the payment is open, else refunded).",
)
def reconcile(as_json: bool, fix: bool) -> None:
    """Compare the store with each provider's settlement report and list every mismatch.

    Exits 1 when anything does not match (after --fix: when anything is left).
    """
    import json

    from paymend.engine.reconcile import reconcile as run_reconcile

    settings = _settings()
    configure_logging("WARNING", stream=sys.stderr)
    runtime = _runtime(settings)
    try:
        report = asyncio.run(run_reconcile(runtime.service, fix=fix))
    except PaymendError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        runtime.close()
    data = report.as_dict()
    if as_json:
        click.echo(json.dumps(data, default=str))
    else:
        click.echo(
            f"compared {data['charges_compared']} settled charges on "
            f"{', '.join(data['providers']) or 'no provider'}"
        )
        for m in data["mismatches"]:
            mark = " (fixed)" if m["fixed"] else ""
            click.echo(
                f"  {m['kind']}: {m['provider']} {m['reference']} payment {m['payment_id']}: "
                f"store {m['store']}, provider {m['provider_says']}{mark}"
            )
        for pid in data["stuck_payments"]:
            click.echo(f"  stuck in processing: {pid}")
        if data["ok"]:
            click.echo("everything matches")
    unresolved = [m for m in data["mismatches"] if not m["fixed"]]
    if unresolved or (data["stuck_payments"] and not fix):
        sys.exit(1)


@main.group()
def lab() -> None:
    """Replay outages and fraud waves in simulated time, against an oracle."""


def _lab_run(
    path: Path, policy: str, report: Path | None = None, *, progress: bool = True
) -> dict[str, Any]:
    """Run one scenario (the oracle and the naive checkout are replayed from its draws),
    with a progress bar on a terminal."""
    import time

    from paymend.lab.arrivals import arrivals
    from paymend.lab.metrics import summarize
    from paymend.lab.progress import ProgressBar
    from paymend.lab.runner import run as run_lab
    from paymend.lab.scenario import load_scenario

    try:
        scenario = load_scenario(path)
    except DataFileError as exc:
        raise click.ClickException(str(exc)) from None
    configure_logging("CRITICAL", stream=sys.stderr)  # the lab's own figures say it all
    started = time.perf_counter()
    bar = ProgressBar(len(arrivals(scenario)), scenario.name, sys.stderr, enabled=progress)
    # a run stopped by `kill` unwinds like Ctrl-C, so its temporary folder is removed too
    before = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        result = run_lab(scenario, policy, progress=bar if bar.enabled else None)
    finally:
        signal.signal(signal.SIGTERM, before)
        bar.close()
    summary = summarize(result)
    summary["wall_s"] = round(time.perf_counter() - started, 2)  # the run, oracle, naive
    if report is not None:
        from paymend.lab.report import write_report

        write_report(result, summary, report)
        summary["wall_s"] = round(time.perf_counter() - started, 2)  # and the report
    return summary


def _exit_on_sigterm(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


@lab.command("run")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--policy",
    type=click.Choice(["default", "naive"]),
    default="default",
    show_default=True,
    help="naive: run the engine as a checkout without paymend (one call, no retry); "
    "the default run already replays that checkout from the same draws.",
)
@click.option("--json", "as_json", is_flag=True, help="Print every figure as one JSON object.")
@click.option(
    "--report",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write report.md and plots (success, traffic, latency over time) into this folder.",
)
def lab_run(path: Path, policy: str, as_json: bool, report: Path | None) -> None:
    """Run the scenario in PATH through the real engine, against the oracle and the naive
    checkout (both replayed from the run's own draws)."""
    import json

    summary = _lab_run(path, policy, report, progress=not as_json)
    if as_json:
        click.echo(json.dumps(summary, ensure_ascii=False))
        return
    from paymend.lab.metrics import HEADLINE

    for key in HEADLINE:
        click.echo(f"{key:>22}: {summary[key]}")
    for fault in summary["faults"]:
        scope = ", ".join(f"{k}={v}" for k, v in fault["scope"].items() if v) or "all"
        click.echo(
            f"  fault {fault['kind']} [{scope}] at {fault['at_s']:g}s for {fault['for_s']:g}s: "
            f"{fault['attempts_into_fault']} attempts into it, "
            f"{fault['customer_failures']} customers failed for technical reasons, "
            f"regret {fault['regret']} {fault['regret_by_cause'] or ''}"
        )
    click.echo(f"  regret by cause: {summary['regret_by_cause'] or 'none'}")


@lab.command("compare")
@click.argument(
    "paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
def lab_compare(paths: tuple[Path, ...]) -> None:
    """One table of the headline figures for several scenarios."""
    from paymend.lab.metrics import HEADLINE

    cols = ("scenario", *HEADLINE)
    summaries = [_lab_run(path, "default") for path in paths]
    rows = [[str(summary.get(c)) for c in cols] for summary in summaries]
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    click.echo(" | ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)))
    click.echo("-|-".join("-" * w for w in widths))
    for r in rows:
        click.echo(" | ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))
    click.echo("\nregret (payments the oracle could save and paymend did not), by cause:")
    for summary in summaries:
        click.echo(f"  {summary['scenario']}: {summary['regret']} {_causes(summary)}")
        for fault in summary["faults"]:
            scope = ", ".join(f"{k}={v}" for k, v in fault["scope"].items() if v) or "all"
            click.echo(
                f"    {fault['kind']} [{scope}] at {fault['at_s']:g}s: {fault['regret']} "
                f"{_causes(fault)}; {fault['attempts_into_fault']} attempts into it, "
                f"customer failures {fault['customer_failures']} avoidable / "
                f"{fault['customer_failures_unavoidable']} unavoidable, "
                f"detect_s {fault['detect_s']}, recover_s {fault['recover_s']}, "
                f"diagnosis {_first_suspect(fault)}"
            )
        if summary["regret_outside_faults"]:
            outside = summary["regret_outside_faults"]
            click.echo(f"    outside every fault: {sum(outside.values())} {outside}")


def _first_suspect(fault: dict[str, Any]) -> str:
    if fault["diagnosis_correct"] is None:
        return "-"
    first = (fault["diagnosis"] or [{}])[0]
    where = ", ".join(f"{k}={v}" for k, v in (first.get("scope") or {}).items()) or "none"
    return f"{where} ({first.get('symptom')}) {'right' if fault['diagnosis_correct'] else 'wrong'}"


def _causes(figures: dict[str, Any]) -> str:
    causes = figures["regret_by_cause"]
    return "(" + ", ".join(f"{c} {n}" for c, n in causes.items()) + ")" if causes else ""


@main.group("config")
def config_group() -> None:
    """Check the channel, routing and playbook configuration."""


@config_group.command("check")
@click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path))
def config_check(path: Path | None) -> None:
    """Validate PATH (default: the file paymend would load) and the playbooks it names."""
    target = path or _settings().config_path()
    try:
        config = load_config(target)
        playbooks_file = config.playbooks_path(Path(target))
        playbooks = load_playbooks(playbooks_file)
    except DataFileError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{target}: ok")
    for name, ch in config.providers.items():
        click.echo(f"  {name}: {ch.type}, methods {', '.join(ch.methods)}")
    click.echo(f"  routing: {' -> '.join(config.routing)}")
    click.echo(f"  playbooks ({playbooks_file}): {', '.join(p.name for p in playbooks)}")


def _ensure_demo_merchant(store: Store, key_file: Path) -> None:
    now = SystemClock().now()
    if key_file.exists():
        key = key_file.read_text().strip()
        if store.run_sync(lambda conn: merchants.by_api_key(conn, key, now)) is not None:
            click.echo(f"demo merchant key: {key_file}", err=True)
            return
    access = AccessService(store, SystemClock(), IdFactory())
    if store.run_sync(lambda conn: merchants.by_name(conn, "demo")) is None:
        merchant, key = asyncio.run(access.create_merchant("demo", _cli_actor()))
        did = "created merchant 'demo'"
    else:  # names are unique: the demo merchant gets a new key instead
        why = f"{key_file} was missing or its key no longer works"
        merchant, issued = asyncio.run(access.rotate_merchant_key("demo", _cli_actor(), reason=why))
        key, did = issued.secret, "gave merchant 'demo' a new key"
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    click.echo(f"{did} ({merchant.id}); its key is in {key_file}", err=True)


def _redact(url: str) -> str:
    """Hide a password in a database URL."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001
        return "<database url>"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
