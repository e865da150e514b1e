"""Who may use paymend: operators with their roles and keys, merchants and their keys.

The CLI (`paymend operators …`, `paymend merchants …`) and the admin endpoints of the
ops API both come here, so the rules are one: a secret is returned once, to be shown
once, and kept only as its hash; a rotation lets the owner's other keys run on for an
overlap window and then expire; every change is audit-logged in the transaction that
makes it (engine/audit.py), never with the secret.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from paymend.domain.clock import Clock
from paymend.domain.errors import InvalidInput
from paymend.domain.ids import MerchantId
from paymend.domain.merchant import Merchant
from paymend.domain.printable import unprintable
from paymend.domain.roles import Role
from paymend.engine.audit import Audited, audited
from paymend.engine.ids import IdFactory
from paymend.store import keys, merchants, operators
from paymend.store.database import Connection, Store
from paymend.store.keys import ApiKey, KeyKind, KeyStatus
from paymend.store.operators import Operator

OPERATOR_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
DEFAULT_OVERLAP_S = 24 * 3600  # a deployment's time to switch to the new key
MAX_OVERLAP_S = 30 * 86400
MAX_LIFETIME_S = 5 * 365 * 86400
Owner = TypeVar("Owner", Operator, Merchant)


@dataclass(frozen=True, slots=True)
class Issued:
    """A new key with its secret (shown once), and the owner's other keys that now run
    out at the end of the overlap."""

    key: ApiKey
    secret: str
    expiring: list[ApiKey]


class AccessService:
    def __init__(self, store: Store, clock: Clock, ids: IdFactory) -> None:
        self.store = store
        self.clock = clock
        self.ids = ids

    # -- operators ------------------------------------------------------------------

    async def create_operator(
        self, name: str, role: Role, actor: str, expires_in_s: float | None = None
    ) -> tuple[Operator, Issued]:
        if not OPERATOR_NAME.match(name):
            raise InvalidInput(
                "parameter_invalid",
                "name: 1 to 64 lower-case letters, digits, '.', '_' or '-', such as ops-lin",
                param="name",
            )
        now = self.clock.now()
        expires_at = _expiry(now, expires_in_s)
        operator_id = self.ids.new("opr")

        def change(conn: Connection) -> Audited[tuple[Operator, Issued]]:
            op = operators.create(conn, operator_id, name, role, now)
            key, secret = keys.issue(conn, keys.OPERATOR, op.id, now, expires_at)
            details = {"role": role.value, "key": _key_details(key)}
            return Audited((op, Issued(key, secret, [])), "operator.create", _of(op), details)

        return await audited(self.store, now, actor, None, change)

    async def operators(self) -> list[tuple[Operator, list[ApiKey]]]:
        def read(conn: Connection) -> list[tuple[Operator, list[ApiKey]]]:
            return [(o, keys.of_owner(conn, keys.OPERATOR, o.id)) for o in operators.every(conn)]

        return await self.store.run(read)

    async def set_role(self, name: str, role: Role, actor: str, reason: str | None) -> Operator:
        _check_reason(reason)
        now = self.clock.now()

        def change(conn: Connection) -> Audited[Operator]:
            op, before = operators.set_role(conn, name, role)
            details = {"before": before.value, "after": role.value}
            return Audited(op, "operator.role", _of(op), details)

        return await audited(self.store, now, actor, reason, change)

    async def rotate_operator_key(
        self,
        name: str,
        actor: str,
        overlap_s: float = DEFAULT_OVERLAP_S,
        expires_in_s: float | None = None,
        reason: str | None = None,
    ) -> tuple[Operator, Issued]:
        return await self._rotate(
            keys.OPERATOR, lambda c: operators.get(c, name), actor, overlap_s, expires_in_s, reason
        )

    async def revoke_operator_keys(
        self, name: str, key_id: str | None, actor: str, reason: str | None
    ) -> list[ApiKey]:
        """Revoke one of the operator's keys, or (key_id None) every key still working."""
        return await self._revoke(
            keys.OPERATOR, lambda c: operators.get(c, name), key_id, actor, reason
        )

    async def note_lookup(self, actor: str, target: str, payment_ids: list[str]) -> None:
        """An operator read customers' payments: the audit log says who saw which, so
        reading customer data is as accountable as changing it."""
        now = self.clock.now()
        details = {"payments": payment_ids[:100], "count": len(payment_ids)}

        def change(_conn: Connection) -> Audited[None]:
            return Audited(None, "payment.lookup", target, details)

        await audited(self.store, now, actor, None, change)

    # -- merchants ------------------------------------------------------------------

    async def create_merchant(
        self, name: str, actor: str, settings: dict[str, Any] | None = None
    ) -> tuple[Merchant, str]:
        """A merchant and its first key (the secret, shown once); names are unique."""
        name = name.strip()
        if not name or len(name) > 200 or unprintable(name) is not None:
            raise InvalidInput(
                "parameter_invalid", "name: 1 to 200 printable characters", param="name"
            )
        now = self.clock.now()
        merchant_id = MerchantId(self.ids.new("mer"))

        def change(conn: Connection) -> Audited[tuple[Merchant, str]]:
            merchant, secret = merchants.create(conn, merchant_id, name, now, settings)
            (key,) = keys.of_owner(conn, keys.MERCHANT, merchant.id)
            details = {"name": name, "key": _key_details(key)}
            return Audited((merchant, secret), "merchant.create", _of(merchant), details)

        return await audited(self.store, now, actor, None, change)

    async def merchant_keys(self, ref: str) -> tuple[Merchant, list[ApiKey]]:
        def read(conn: Connection) -> tuple[Merchant, list[ApiKey]]:
            merchant = merchants.get(conn, ref)
            return merchant, keys.of_owner(conn, keys.MERCHANT, merchant.id)

        return await self.store.run(read)

    async def rotate_merchant_key(
        self,
        ref: str,
        actor: str,
        overlap_s: float = DEFAULT_OVERLAP_S,
        expires_in_s: float | None = None,
        reason: str | None = None,
    ) -> tuple[Merchant, Issued]:
        return await self._rotate(
            keys.MERCHANT, lambda c: merchants.get(c, ref), actor, overlap_s, expires_in_s, reason
        )

    async def revoke_merchant_keys(
        self, ref: str, key_id: str | None, actor: str, reason: str | None
    ) -> list[ApiKey]:
        return await self._revoke(
            keys.MERCHANT, lambda c: merchants.get(c, ref), key_id, actor, reason
        )

    # -- both ---------------------------------------------------------------------------

    async def _rotate(
        self,
        kind: KeyKind,
        owner_of: Callable[[Connection], Owner],
        actor: str,
        overlap_s: float,
        expires_in_s: float | None,
        reason: str | None,
    ) -> tuple[Owner, Issued]:
        if not 0 <= overlap_s <= MAX_OVERLAP_S:
            raise InvalidInput(
                "parameter_invalid",
                f"overlap: 0 to {MAX_OVERLAP_S // 86400} days",
                param="overlap_seconds",
            )
        _check_reason(reason)
        now = self.clock.now()
        expires_at = _expiry(now, expires_in_s)
        until = now + timedelta(seconds=overlap_s)

        def change(conn: Connection) -> Audited[tuple[Owner, Issued]]:
            owner = owner_of(conn)
            key, secret = keys.issue(conn, kind, owner.id, now, expires_at)
            expiring = keys.expire_others(conn, kind, owner.id, key.id, until, now)
            details = {
                "key": _key_details(key),
                "overlap_seconds": overlap_s,
                "expiring": [_key_details(k) for k in expiring],
            }
            action = f"{_noun(kind)}.key.rotate"
            return Audited((owner, Issued(key, secret, expiring)), action, _of(owner), details)

        return await audited(self.store, now, actor, reason, change)

    async def _revoke(
        self,
        kind: KeyKind,
        owner_of: Callable[[Connection], Owner],
        key_id: str | None,
        actor: str,
        reason: str | None,
    ) -> list[ApiKey]:
        _check_reason(reason)
        now = self.clock.now()

        def change(conn: Connection) -> Audited[list[ApiKey]]:
            owner = owner_of(conn)
            if key_id is not None:
                targets = [key_id]
            else:
                working = keys.of_owner(conn, kind, owner.id)
                targets = [k.id for k in working if k.status(now) is KeyStatus.ACTIVE]
            done = [keys.revoke(conn, kind, owner.id, k, now) for k in targets]
            details = {"keys": [_key_details(k) for k in done]}
            return Audited(done, f"{_noun(kind)}.key.revoke", _of(owner), details)

        return await audited(self.store, now, actor, reason, change)


def _expiry(now: datetime, expires_in_s: float | None) -> datetime | None:
    if expires_in_s is None:
        return None
    if not 0 < expires_in_s <= MAX_LIFETIME_S:
        raise InvalidInput(
            "parameter_invalid",
            f"expires in: more than 0 and at most {MAX_LIFETIME_S // 86400} days",
            param="expires_in_seconds",
        )
    return now + timedelta(seconds=expires_in_s)


def _check_reason(reason: str | None) -> None:
    if reason is not None and (
        not reason.strip() or len(reason) > 500 or unprintable(reason) is not None
    ):
        raise InvalidInput(
            "parameter_invalid", "reason: 1 to 500 printable characters", param="reason"
        )


def _noun(kind: KeyKind) -> str:
    return "operator" if kind is keys.OPERATOR else "merchant"


def _of(owner: Operator | Merchant) -> str:
    return f"operator:{owner.name}" if isinstance(owner, Operator) else f"merchant:{owner.id}"


def _key_details(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "hint": key.hint,
        "expires_at": key.expires_at.isoformat() if key.expires_at else None,
    }
