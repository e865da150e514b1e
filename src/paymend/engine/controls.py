"""Operator controls over routing: pause a channel, a bank or a region (optionally for
one method), force a channel for a method, hold a bank's or region's payments of one
currency above an amount for manual review. Every change is audit-logged in the same
transaction; the engine reads active controls through a one-second cache, so every
process follows a change within a second.

A control names only what the configuration knows (a channel it configures; a bank or
region it lists, when it lists them) in a sound shape, so a typo is refused rather than
silently pausing nothing; and an identical active control is never set twice.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from paymend.domain.clock import Clock
from paymend.domain.control import SCOPES, Control, ControlKind, ControlScope
from paymend.domain.errors import InvalidInput
from paymend.domain.money import Money, check_currency
from paymend.domain.printable import unprintable
from paymend.engine.audit import Audited, audited
from paymend.engine.ids import IdFactory
from paymend.observability import get_logger
from paymend.store import controls as repo
from paymend.store import jobs
from paymend.store.database import Connection, Store
from paymend.store.jobs import JobKind

__all__ = [
    "LONGEST",
    "PREVIEW_SPAN",
    "ControlService",
    "KnownScopes",
    "RouteControls",
    "route_controls",
]

log = get_logger("paymend.audit")
CACHE_S = 1.0
PREVIEW_SPAN = timedelta(hours=1)  # a preview counts the payments of the last hour
# an operator's control ends within this: an emergency measure, not a configuration change
# (a playbook's has no end time: it ends when its playbook recovers)
LONGEST = timedelta(days=7)
PROBE_EVERY_S = 1.0  # a playbook's pause lets one payment through this often, per process
PLAYBOOK = "playbook:"  # the actor of a control a playbook set (engine/playbooks.py)
# a bank or region code or name, 1 to 64 characters: letters (any script) and digits,
# with spaces and the punctuation of names inside ("Bank of China (Hong Kong)",
# "People's Bank"); never a control character, an edge space or a `|` (it separates
# the parts of a control's signature)
VALUE_SHAPE = re.compile(r"^\w(?:[\w .,&'()/+-]{0,62}[\w.)])?$")
METHOD_SHAPE = re.compile(r"^[a-z][a-z_]{1,31}$")


@dataclass(frozen=True, slots=True)
class KnownScopes:
    """What the configuration knows a control may name. `banks` or `regions` None: it
    lists none, so any value of a sound shape is taken; `methods` None: not checked."""

    channels: frozenset[str]
    banks: frozenset[str] | None = None
    regions: frozenset[str] | None = None
    methods: frozenset[str] | None = None

    def check(self, scope: str, value: str) -> None:
        known = {"channel": self.channels, "bank": self.banks, "region": self.regions}[scope]
        if known is not None and value not in known:
            listed = ", ".join(sorted(known)) or "none"
            raise InvalidInput(
                f"{scope}_unknown",
                f"no {scope} '{value}' in the configuration (it knows: {listed})",
                param="value",
            )


@dataclass(frozen=True, slots=True)
class RouteControls:
    """What the active controls mean for one payment."""

    paused_channels: frozenset[str]
    forced: str | None
    paused_because: str | None  # the payment's bank or region is paused
    held_because: str | None = None  # it waits for review before any provider is called
    # the playbook's pause a probe may pass (every pause in the way is a playbook's): the
    # pause starves the signal it was set on, so only probes can show the scope is back
    probe: str | None = None


class ControlService:
    def __init__(self, store: Store, clock: Clock, ids: IdFactory) -> None:
        self.store = store
        self.clock = clock
        self.ids = ids
        self._cache: list[Control] = []
        self._loaded_at: float | None = None
        self._probed: dict[str, float] = {}  # pause id -> when a probe last passed it

    async def active(self) -> list[Control]:
        """The active controls, at most CACHE_S old; one whose end time has come is gone
        at once (on the injected clock), and lifted in the store when next loaded."""
        now = self.clock.monotonic()
        if self._loaded_at is None or now - self._loaded_at >= CACHE_S:
            at = self.clock.now()
            loaded = await self.store.run(repo.active)
            if any(not c.lasts_at(at) for c in loaded):
                await self.store.run(lambda conn: _lift(conn, at))
                for c in loaded:
                    if not c.lasts_at(at):
                        log.info("control_expired", id=c.id, kind=c.kind.value, value=c.value)
            self._cache = loaded
            self._loaded_at = now
        at = self.clock.now()
        return [c for c in self._cache if c.lasts_at(at)]

    def forget(self) -> None:
        self._loaded_at = None

    async def for_payment(
        self, method: str, bank: str | None, region: str | None, amount: Money | None = None
    ) -> RouteControls:
        """`amount` None: holds are not asked about (a release decides on one)."""
        return route_controls(await self.active(), method, bank, region, amount)

    def take_probe(self, pause: str | None) -> bool:
        """May a payment pass the playbook's `pause` now, as its probe? One every
        PROBE_EVERY_S: enough for the playbook to see the scope answer again within
        seconds of a fault's end, few enough to cost little while it lasts."""
        if pause is None:
            return False
        now = self.clock.monotonic()
        last = self._probed.get(pause)
        if last is not None and now - last < PROBE_EVERY_S:
            return False
        self._probed[pause] = now
        return True

    async def set(
        self,
        kind: str,
        scope: str,
        value: str,
        method: str | None,
        reason: str,
        actor: str,
        known: KnownScopes | Iterable[str],
        amount_above: int | None = None,
        currency: str | None = None,
        ends_at: datetime | None = None,
    ) -> Control:
        """Set a control; `known` is what the configuration knows (or just its channels);
        `ends_at`: it lifts itself then. InvalidInput names the parameter at fault;
        ControlExists (409) carries the identical control already active. Nothing is
        written when either is raised."""
        control = self._checked(
            kind, scope, value, method, reason, actor, known, amount_above, currency, ends_at
        )
        now = control.created_at

        def write(conn: Connection) -> Audited[Control]:
            repo.lift(conn, now)  # an identical control past its end no longer counts
            repo.add(conn, control)
            return Audited(control, f"control.{kind}", f"{scope}:{value}", control.as_dict())

        added = await audited(self.store, now, actor, reason, write)
        self.forget()
        return added

    async def preview(
        self,
        kind: str,
        scope: str,
        value: str,
        method: str | None,
        reason: str,
        known: KnownScopes | Iterable[str],
        amount_above: int | None = None,
        currency: str | None = None,
        ends_at: datetime | None = None,
    ) -> tuple[Control, int]:
        """The control `set` would make (checked the same way, nothing written) and how
        many payments of the last hour it would have touched."""
        control = self._checked(
            kind, scope, value, method, reason, "", known, amount_above, currency, ends_at
        )
        now = control.created_at
        count = await self.store.run(lambda conn: repo.touched(conn, control, now - PREVIEW_SPAN))
        return control, count

    def _checked(
        self,
        kind: str,
        scope: str,
        value: str,
        method: str | None,
        reason: str,
        actor: str,
        known: KnownScopes | Iterable[str],
        amount_above: int | None,
        currency: str | None,
        ends_at: datetime | None,
    ) -> Control:
        if not isinstance(known, KnownScopes):
            known = KnownScopes(frozenset(known))
        currency = _check(kind, scope, value, method, reason, known, amount_above, currency)
        now = self.clock.now()
        if ends_at is not None and not now < ends_at <= now + LONGEST:
            raise InvalidInput(
                "parameter_invalid",
                f"ends_at must be later than now and at most {LONGEST.days} days ahead",
                param="ends_at",
            )
        return Control(
            self.ids.new("ctl"),
            ControlKind(kind),
            ControlScope(scope),
            value,
            method,
            reason,
            actor,
            now,
            amount_above=amount_above,
            currency=currency,
            ends_at=ends_at,
        )

    async def end(self, control_id: str, reason: str, actor: str) -> Control:
        now = self.clock.now()

        def write(conn: Connection) -> Audited[Control]:
            c = repo.end(conn, control_id, actor, now)
            jobs.wake(conn, JobKind.START_PAYMENT, now)  # engine/waiting.py: look now
            return Audited(c, f"control.{c.kind}.end", f"{c.scope}:{c.value}", {"id": control_id})

        ended = await audited(self.store, now, actor, reason, write)
        self.forget()
        return ended


def _lift(conn: Connection, now: datetime) -> None:
    """Lift the controls whose end time has come; the payments waiting out a pause
    (engine/waiting.py) look again at once."""
    repo.lift(conn, now)
    jobs.wake(conn, JobKind.START_PAYMENT, now)


def _check(
    kind: str,
    scope: str,
    value: str,
    method: str | None,
    reason: str,
    known: KnownScopes,
    amount_above: int | None,
    currency: str | None,
) -> str | None:
    """Refuse a control that could not do what it says; return its currency, canonical."""
    try:
        scopes: tuple[str, ...] = SCOPES[ControlKind(kind)]
    except ValueError:  # no such kind
        scopes = ()
    if scope not in scopes:
        raise InvalidInput(
            "control_invalid",
            f"'{kind}' applies to {', '.join(scopes) or 'nothing'}, not '{scope}'",
            param="scope",
        )
    bad = unprintable(value)
    if bad is not None or not VALUE_SHAPE.match(value):
        why = f"holds the control character {bad}" if bad else "has an odd shape"
        raise InvalidInput(
            "parameter_invalid",
            f"value {why}: 1 to 64 letters and digits, with spaces and .,&'()/+- inside",
            param="value",
        )
    known.check(scope, value)
    if method is not None:
        if not METHOD_SHAPE.match(method):
            raise InvalidInput("parameter_invalid", "method: a name such as card", param="method")
        if known.methods is not None and method not in known.methods:
            raise InvalidInput(
                "method_unknown",
                f"no configured channel takes '{method}' ({', '.join(sorted(known.methods))})",
                param="method",
            )
    bad = unprintable(reason)
    if bad is not None or not reason.strip():
        raise InvalidInput(
            "parameter_invalid",
            f"reason holds the control character {bad}" if bad else "reason is empty",
            param="reason",
        )
    if (kind == ControlKind.HOLD) != (amount_above is not None):
        raise InvalidInput(
            "control_invalid",
            "a hold needs amount_above (minor units); other controls take none",
            param="amount_above",
        )
    if amount_above is not None and amount_above < 0:
        raise InvalidInput("parameter_invalid", "amount_above must be >= 0", param="amount_above")
    if (kind == ControlKind.HOLD) != (currency is not None):
        raise InvalidInput(
            "control_invalid",
            "a hold needs the currency its amount_above is in; other controls take none",
            param="currency",
        )
    return None if currency is None else check_currency(currency)


def route_controls(
    active: Iterable[Control],
    method: str,
    bank: str | None,
    region: str | None,
    amount: Money | None = None,
) -> RouteControls:
    paused: set[str] = set()
    forced = None
    because = held = None
    pauses: list[Control] = []
    for c in active:
        if c.method is not None and c.method != method:
            continue
        ours = (c.scope is ControlScope.BANK and c.value == bank) or (
            c.scope is ControlScope.REGION and c.value == region
        )
        if c.kind is ControlKind.FORCE_ROUTE:
            forced = c.value
        elif c.scope is ControlScope.CHANNEL:
            paused.add(c.value)
        elif c.kind is ControlKind.HOLD:
            if ours and amount is not None and _holds(c, amount):
                held = (
                    f"{c.scope} {c.value}: {c.currency or 'payments'} above {c.amount_above}"
                    f" held for review: {c.reason}"
                )
        elif ours:
            because = f"{c.scope} {c.value} paused by ops: {c.reason}"
            pauses.append(c)
    probe = None
    if pauses and all(c.set_by.startswith(PLAYBOOK) for c in pauses):
        probe = min(c.id for c in pauses)
    return RouteControls(frozenset(paused), forced, because, held, probe)


def _holds(c: Control, amount: Money) -> bool:
    """A hold applies to payments of its currency above its threshold (one set before
    holds had a currency applies to every currency, as it did)."""
    if c.amount_above is None or amount.minor <= c.amount_above:
        return False
    return c.currency is None or c.currency == amount.currency
