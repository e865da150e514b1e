"""Operator and playbook controls over routing: pause, force a route, hold for review."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any


class ControlKind(StrEnum):
    PAUSE = "pause"  # no payment goes to the channel, or no payment of the bank or region
    FORCE_ROUTE = "force_route"  # the channel goes first for the method
    HOLD = "hold"  # payments of the bank or region above an amount wait for review


class ControlScope(StrEnum):
    CHANNEL = "channel"
    BANK = "bank"
    REGION = "region"


SCOPES: Mapping[ControlKind, tuple[ControlScope, ...]] = MappingProxyType(
    {
        ControlKind.PAUSE: (ControlScope.CHANNEL, ControlScope.BANK, ControlScope.REGION),
        ControlKind.FORCE_ROUTE: (ControlScope.CHANNEL,),
        ControlKind.HOLD: (ControlScope.BANK, ControlScope.REGION),
    }
)
"""The scopes each kind of control applies to."""


@dataclass(frozen=True, slots=True)
class Control:
    id: str
    kind: ControlKind
    scope: ControlScope
    value: str  # the channel, bank or region
    method: str | None  # only payments of this method; None: every method
    reason: str
    set_by: str
    created_at: datetime
    ended_at: datetime | None = None
    ended_by: str | None = None
    amount_above: int | None = None  # hold: payments above this many minor units...
    currency: str | None = None  # ...of this currency (None: any, as holds before 0009)
    ends_at: datetime | None = None  # it lifts itself then (None: until ended)

    def lasts_at(self, now: datetime) -> bool:
        """Active at `now`: not ended, and its end time (if any) not reached."""
        return self.ended_at is None and (self.ends_at is None or now < self.ends_at)

    def __post_init__(self) -> None:
        # a kind or scope given by its value (a row, a test) is the enum member
        object.__setattr__(self, "kind", ControlKind(self.kind))
        object.__setattr__(self, "scope", ControlScope(self.scope))

    @property
    def signature(self) -> str:
        """What the control does; identical active controls are refused."""
        parts = (self.method, self.currency, self.amount_above)
        tail = "|".join("*" if p is None else str(p) for p in parts)
        return f"{self.kind.value}|{self.scope.value}|{self.value}|{tail}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind.value,
            "scope": self.scope.value,
            "value": self.value,
            "method": self.method,
            "reason": self.reason,
            "set_by": self.set_by,
            "created_at": self.created_at.isoformat(),
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "ended_by": self.ended_by,
            "amount_above": self.amount_above,
            "currency": self.currency,
            "ends_at": self.ends_at.isoformat() if self.ends_at else None,
        }
