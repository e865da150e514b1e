"""`paymend merchants` and `operators`: who may use paymend, with which keys."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any, TypeVar

import click

from paymend.cli.base import cli_actor, main, migrated_database
from paymend.domain.errors import PaymendError
from paymend.domain.roles import ROLE_NAMES, Role
from paymend.engine.access import AccessService, Issued
from paymend.engine.clock import SystemClock
from paymend.engine.ids import IdFactory
from paymend.store.database import Store
from paymend.store.keys import ApiKey

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
    "--checkout-url",
    default=None,
    help="The shop's checkout page for an order, with {order_id} in it (e.g. "
    "'https://shop.cn/pay?order={order_id}'): the customer's status page and support's "
    "finish link send a customer whose payment failed there to pay another way.",
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
    checkout_url: str | None,
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
    if checkout_url:
        if not checkout_url.startswith(("http://", "https://")) or "{order_id}" not in checkout_url:
            raise click.BadParameter(
                "an http(s) URL with {order_id} in it", param_hint="--checkout-url"
            )
        settings["checkout_url"] = checkout_url
    if compensation_cap_percent is not None:
        settings["compensation_cap_percent"] = compensation_cap_percent
    if webhook_url:
        if not webhook_url.startswith(("http://", "https://")):
            raise click.BadParameter("an http(s) URL", param_hint="--webhook-url")
        settings["webhook_url"] = webhook_url
        settings["webhook_secret"] = new_secret()
    if not name.strip() or len(name) > 200:
        raise click.BadParameter("a name of 1 to 200 characters", param_hint="NAME")
    merchant, key = _access(lambda a: a.create_merchant(name, cli_actor(), settings or None))
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
        lambda a: a.rotate_merchant_key(merchant, cli_actor(), overlap_s, lifetime, reason)
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
    done = _access(lambda a: a.revoke_merchant_keys(merchant, target, cli_actor(), reason))
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
    op, issued = _access(lambda a: a.create_operator(name, Role(role), cli_actor(), lifetime))
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
        lambda a: a.rotate_operator_key(name, cli_actor(), overlap_s, lifetime, reason)
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
    done = _access(lambda a: a.revoke_operator_keys(name, target, cli_actor(), reason))
    for key in done:
        click.echo(f"revoked {key.id} ({key.hint})")


@operators_group.command("role")
@click.argument("name")
@click.argument("role", type=click.Choice(ROLE_NAMES))
@_REASON
def operators_role(name: str, role: str, reason: str | None) -> None:
    """Give operator NAME another ROLE."""
    op = _access(lambda a: a.set_role(name, Role(role), cli_actor(), reason))
    click.echo(f"{op.name} is now {op.role.value}")


@operators_group.command("password")
@click.argument("name")
@click.option("--stdin", "from_stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--remove", is_flag=True, help="Remove the password: no console log-in.")
def operators_password(name: str, from_stdin: bool, remove: bool) -> None:
    """Set operator NAME's console password (asked twice, at least 12 characters).

    Their console sessions end at once. Audit-logged as cli:<your user name>."""
    import sys

    from paymend.console.accounts import Accounts

    if remove and from_stdin:
        raise click.UsageError("give --stdin or --remove (not both)")
    password: str | None = None
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif not remove:
        password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    store = Store(migrated_database(), inline=True)
    try:
        op = asyncio.run(
            Accounts(store, SystemClock(), 0, 0).set_password(name, password, cli_actor())
        )
    except PaymendError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        store.close()
    did = "removed" if password is None else "set"
    click.echo(f"console password of {op.name} ({op.role.value}) {did}", err=True)


T = TypeVar("T")


def _access(use: Callable[[AccessService], Coroutine[Any, Any, T]]) -> T:
    """Run one use case of engine/access.py on the configured database."""
    store = Store(migrated_database(), inline=True)
    try:
        return asyncio.run(use(AccessService(store, SystemClock(), IdFactory())))
    except PaymendError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        store.close()


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
