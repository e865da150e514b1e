"""`paymend explain-code`, `reconcile` and `config check`: what a code means, whether
the store agrees with the providers, whether a configuration loads."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from paymend.cli.base import env_settings, main, migrated_database, open_runtime
from paymend.config import channel_credentials, load_config, mask
from paymend.config.channels import ConnectorChannel
from paymend.customers.articles import build_help
from paymend.customers.faq import load_faq
from paymend.datafiles import DataFileError
from paymend.domain.errors import PaymendError
from paymend.failures.classify import default_classifier
from paymend.notify.ops_routes import load_routes
from paymend.observability import configure_logging
from paymend.playbooks.model import load_playbooks
from paymend.store.database import Store


@main.command("explain-code")
@click.argument("provider", required=False)
@click.argument("code", required=False)
@click.option("--locale", default="en", show_default=True, help="Language of the customer message.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per code.")
@click.option(
    "--stdin",
    "from_stdin",
    is_flag=True,
    help="Read 'PROVIDER CODE' lines (the code may contain spaces); a bad line is reported "
    "with its number and the rest are still explained.",
)
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

    With --stdin, each line is 'PROVIDER CODE' (blank lines and lines starting with '#'
    are skipped). A line that is malformed or names an unknown provider is reported on
    stderr as '<stdin>:LINE: ...' and the other lines are still explained; the exit
    status is 1 if any line was bad.

    \b
    Examples:
      paymend explain-code alipay ACQ.BUYER_BALANCE_NOT_ENOUGH --locale zh-CN
      paymend explain-code card 51 --json
      paymend explain-code adyen "Issuer Unavailable"
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
    known = sorted(p for p in classifier.maps if p != "transport")

    def show(prov: str, raw: str) -> None:
        info = explain(classifier, prov, raw, chosen)
        click.echo(json.dumps(info, ensure_ascii=False) if as_json else as_text(info))

    if not from_stdin:
        if not (provider and code):
            raise click.UsageError("give PROVIDER CODE, or --stdin, or --unmapped")
        if provider not in classifier.maps:
            raise click.ClickException(f"unknown provider '{provider}' (known: {', '.join(known)})")
        show(provider, code)
        return
    bad = 0
    for number, line in enumerate(sys.stdin, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        parts = text.split(None, 1)
        if len(parts) != 2:
            problem = f"expected 'PROVIDER CODE', got {text!r}"
        elif parts[0] not in classifier.maps:
            problem = f"unknown provider '{parts[0]}' (known: {', '.join(known)})"
        else:
            show(parts[0], parts[1])
            continue
        bad += 1
        click.echo(f"<stdin>:{number}: {problem}", err=True)
    if bad:
        click.echo(f"{bad} line{'s' if bad > 1 else ''} could not be explained", err=True)
        sys.exit(1)


def _print_unmapped(as_json: bool) -> None:
    import json

    from paymend.store import unmapped

    store = Store(migrated_database())
    try:
        rows = store.run_sync(unmapped.codes)
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

    settings = env_settings()
    configure_logging("WARNING", stream=sys.stderr)
    runtime = open_runtime(settings)
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
        for name in data["unreachable"]:
            click.echo(f"  {name}: its settlement report could not be read")
        if data["ok"]:
            click.echo("everything matches")
    unresolved = [m for m in data["mismatches"] if not m["fixed"]]
    if unresolved or data["unreachable"] or (data["stuck_payments"] and not fix):
        sys.exit(1)


@main.group("config")
def config_group() -> None:
    """Check the channel, routing and playbook configuration."""


@config_group.command("check")
@click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path))
def config_check(path: Path | None) -> None:
    """Validate PATH (default: the file paymend would load), the playbooks, ops routes,
    customers' FAQ and help texts it names, and that every real channel's credentials
    and every route's secrets are set (credentials shown masked, never printed)."""
    target = path or env_settings().config_path()
    try:
        config = load_config(target)
        playbooks_file = config.playbooks_path(Path(target))
        playbooks = load_playbooks(playbooks_file)
        credentials = channel_credentials(config, target)
        routes_file = config.ops_alerts.routes_path(Path(target))
        routes = load_routes(routes_file) if routes_file is not None else None
        faq_file = config.customers.path(Path(target), config.customers.faq)
        faq = load_faq(faq_file)
        extra_file = config.customers.path(Path(target), config.customers.help_extra)
        help_centre = build_help(default_classifier(), extra_file)
    except DataFileError as exc:
        raise click.ClickException(str(exc)) from None
    from paymend.engine.notice_setup import missing_secrets

    unset = missing_secrets(config.notifications)
    missing = [(name, c) for name, creds in credentials.items() for c in creds if c.value is None]
    problem = "credentials missing" if missing else "secrets missing" if unset else "ok"
    click.echo(f"{target}: {problem}")
    for name, ch in config.providers.items():
        where = f", {ch.url()}" if isinstance(ch, ConnectorChannel) else ""
        click.echo(f"  {name}: {ch.type}, methods {', '.join(ch.methods)}{where}")
        for c in credentials.get(name, []):
            source = f" from the {c.source}" if c.source else f": set {c.env}"
            click.echo(f"    {c.name}: {mask(c.value)}{source}")
    click.echo(f"  routing: {' -> '.join(config.routing)}")
    click.echo(f"  playbooks ({playbooks_file}): {', '.join(p.name for p in playbooks)}")
    extra = sum(1 for a in help_centre.articles.values() if a.extra)
    click.echo(
        f"  customers: FAQ ({faq_file or 'shipped'}) {len(faq.questions)} questions; "
        f"{len(help_centre.articles)} help articles, {extra} with the shop's text"
    )
    if routes is not None:
        levels = " -> ".join("+".join(lv.routes) for lv in routes.spec.levels)
        click.echo(f"  ops routes ({routes_file}): {levels}")
    if unset:
        raise click.ClickException(f"{target}: {unset[0]}")
    if missing:
        name, c = missing[0]
        raise click.ClickException(
            f"{target}: providers.{name}: credential '{c.name}' is missing "
            f"(set {c.env} or add it to the secrets file)"
        )
    from paymend.engine.channels import build_channels  # builds; calls no provider
    from paymend.engine.clock import SystemClock

    try:  # every credential set: each must also be usable (a key that parses)
        build_channels(config, target, SystemClock())
    except DataFileError as exc:
        raise click.ClickException(str(exc)) from None


@main.group("channels")
def channels_group() -> None:
    """Check the configured payment channels."""


@channels_group.command("check")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per channel.")
def channels_check(as_json: bool) -> None:
    """Ask each real channel's provider whether its credentials work and it answers,
    moving no money (Alipay: a signed query of an order that cannot exist). Simulated
    channels have nothing to check. Exits 1 when a channel fails its check."""
    import json

    from paymend.engine.channel_checks import check_channels
    from paymend.engine.channels import build_channels
    from paymend.engine.clock import SystemClock

    target = env_settings().config_path()
    configure_logging("WARNING", stream=sys.stderr)
    try:
        config = load_config(target)
        providers, sims = build_channels(config, target, SystemClock())
    except DataFileError as exc:
        raise click.ClickException(str(exc)) from None

    results = asyncio.run(check_channels(providers, frozenset(sims)))
    for r in results:
        kind = config.providers[r.channel].type
        if as_json:
            item = {"channel": r.channel, "type": kind, "ok": r.ok, "detail": r.detail}
            click.echo(json.dumps(item))
        else:
            mark = {True: "ok", False: "FAILED", None: "-"}[r.ok]
            click.echo(f"{r.channel} ({kind}): {mark}: {r.detail}")
    if any(r.ok is False for r in results):
        sys.exit(1)
