"""Operator controls over routing: pause a channel, a bank or a region (optionally for
one method), force a channel for a method, hold a bank's or region's payments above an
amount for manual review. Every change is audit-logged in the same
transaction; the engine reads active controls through a one-second cache, so every
process follows a change within a second."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from paymend.domain.clock import Clock
from paymend.domain.errors import InvalidInput
from paymend.engine.audit import Audited, audited
from paymend.engine.ids import IdFactory
from paymend.observability import get_logger
from paymend.store import controls as repo
from paymend.store.controls import Control
from paymend.store.database import Store

log = get_logger("paymend.audit")
CACHE_S = 1.0
KINDS = {
    "pause": ("channel", "bank", "region"),
    "force_route": ("channel",),
    "hold": ("bank", "region"),
}


@dataclass(frozen=True, slots=True)
class RouteControls:
    """What the active controls mean for one payment."""

    paused_channels: frozenset[str]
    forced: str | None
    paused_because: str | None  # the payment's bank or region is paused
    held_because: str | None = None  # it waits for review before any provider is called


class ControlService:
    def __init__(self, store: Store, clock: Clock, ids: IdFactory) -> None:
        self.store = store
        self.clock = clock
        self.ids = ids
        self._cache: list[Control] = []
        self._loaded_at: float | None = None

    async def active(self) -> list[Control]:
        now = self.clock.monotonic()
        if self._loaded_at is None or now - self._loaded_at >= CACHE_S:
            self._cache = await self.store.run(repo.active)
            self._loaded_at = now
        return self._cache

    def forget(self) -> None:
        self._loaded_at = None

    async def for_payment(
        self, method: str, bank: str | None, region: str | None, amount_minor: int = 0
    ) -> RouteControls:
        return route_controls(await self.active(), method, bank, region, amount_minor)

    async def set(
        self,
        kind: str,
        scope: str,
        value: str,
        method: str | None,
        reason: str,
        actor: str,
        known_channels: Iterable[str],
        amount_above: int | None = None,
    ) -> Control:
        if scope not in KINDS.get(kind, ()):
            raise InvalidInput(
                "control_invalid",
                f"'{kind}' applies to {', '.join(KINDS.get(kind, ())) or 'nothing'}, not '{scope}'",
                param="scope",
            )
        if scope == "channel" and value not in set(known_channels):
            raise InvalidInput("channel_unknown", f"no channel '{value}'", param="value")
        if (kind == "hold") != (amount_above is not None):
            raise InvalidInput(
                "control_invalid",
                "a hold needs amount_above (minor units); other controls take none",
                param="amount_above",
            )
        now = self.clock.now()
        control = Control(
            self.ids.new("ctl"),
            kind,
            scope,
            value,
            method,
            reason,
            actor,
            now,
            amount_above=amount_above,
        )

        def write(conn: Connection) -> Audited[Control]:
            repo.add(conn, control)
            return Audited(control, f"control.{kind}", f"{scope}:{value}", control.as_dict())

        added = await audited(self.store, now, actor, reason, write)
        self.forget()
        return added

    async def end(self, control_id: str, reason: str, actor: str) -> Control:
        now = self.clock.now()

        def write(conn: Connection) -> Audited[Control]:
            c = repo.end(conn, control_id, actor, now)
            return Audited(c, f"control.{c.kind}.end", f"{c.scope}:{c.value}", {"id": control_id})

        ended = await audited(self.store, now, actor, reason, write)
        self.forget()
        return ended


def route_controls(
    active: Iterable[Control],
    method: str,
    bank: str | None,
    region: str | None,
    amount_minor: int = 0,
) -> RouteControls:
    paused: set[str] = set()
    forced = None
    because = held = None
    for c in active:
        if c.method is not None and c.method != method:
            continue
        ours = (c.scope == "bank" and c.value == bank) or (
            c.scope == "region" and c.value == region
        )
        if c.kind == "force_route":
            forced = c.value
        elif c.scope == "channel":
            paused.add(c.value)
        elif c.kind == "hold":
            if ours and c.amount_above is not None and amount_minor > c.amount_above:
                held = f"{c.scope} {c.value}: above {c.amount_above} held for review: {c.reason}"
        elif ours:
            because = f"{c.scope} {c.value} paused by ops: {c.reason}"
    return RouteControls(frozenset(paused), forced, because, held)
