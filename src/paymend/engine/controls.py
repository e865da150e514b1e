"""Operator controls over routing: pause a channel, a bank or a region (optionally for
one method), force a channel for a method. Every change is audit-logged in the same
transaction; the engine reads active controls through a one-second cache, so every
process follows a change within a second."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from paymend.domain.clock import Clock
from paymend.domain.errors import InvalidInput
from paymend.engine.ids import IdFactory
from paymend.observability import get_logger
from paymend.store import controls as repo
from paymend.store.controls import Control
from paymend.store.database import Store

log = get_logger("paymend.audit")
CACHE_S = 1.0
KINDS = {"pause": ("channel", "bank", "region"), "force_route": ("channel",)}


@dataclass(frozen=True, slots=True)
class RouteControls:
    """What the active controls mean for one payment."""

    paused_channels: frozenset[str]
    forced: str | None
    paused_because: str | None  # the payment's bank or region is paused


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

    async def for_payment(self, method: str, bank: str | None, region: str | None) -> RouteControls:
        return route_controls(await self.active(), method, bank, region)

    async def set(
        self,
        kind: str,
        scope: str,
        value: str,
        method: str | None,
        reason: str,
        actor: str,
        known_channels: Iterable[str],
    ) -> Control:
        if scope not in KINDS.get(kind, ()):
            raise InvalidInput(
                "control_invalid",
                f"'{kind}' applies to {', '.join(KINDS.get(kind, ())) or 'nothing'}, not '{scope}'",
                param="scope",
            )
        if scope == "channel" and value not in set(known_channels):
            raise InvalidInput("channel_unknown", f"no channel '{value}'", param="value")
        now = self.clock.now()
        control = Control(self.ids.new("ctl"), kind, scope, value, method, reason, actor, now)

        def write(conn: Connection) -> Control:
            repo.add(conn, control)
            repo.audit(
                conn, now, actor, f"control.{kind}", f"{scope}:{value}", reason, control.as_dict()
            )
            return control

        saved = await self.store.run(write)
        self.forget()
        log.info(
            "audit",
            action=f"control.{kind}",
            who=actor,
            target=f"{scope}:{value}",
            method=method,
            why=reason,
        )
        return saved

    async def end(self, control_id: str, reason: str, actor: str) -> Control:
        now = self.clock.now()

        def write(conn: Connection) -> Control:
            ended = repo.end(conn, control_id, actor, now)
            repo.audit(
                conn,
                now,
                actor,
                f"control.{ended.kind}.end",
                f"{ended.scope}:{ended.value}",
                reason,
                {"id": control_id},
            )
            return ended

        ended = await self.store.run(write)
        self.forget()
        log.info(
            "audit",
            action=f"control.{ended.kind}.end",
            who=actor,
            target=f"{ended.scope}:{ended.value}",
            why=reason,
        )
        return ended


def route_controls(
    active: Iterable[Control], method: str, bank: str | None, region: str | None
) -> RouteControls:
    paused: set[str] = set()
    forced = None
    because = None
    for c in active:
        if c.method is not None and c.method != method:
            continue
        if c.kind == "force_route":
            forced = c.value
        elif c.scope == "channel":
            paused.add(c.value)
        elif (c.scope == "bank" and c.value == bank) or (c.scope == "region" and c.value == region):
            because = f"{c.scope} {c.value} paused by ops: {c.reason}"
    return RouteControls(frozenset(paused), forced, because)
