"""API keys of merchants and operators, kept alike: several per owner, stored as SHA-256
hashes (the secret is shown once, at creation), each with a hint to tell it apart, an
optional expiry, a revocation time and when it was last used.

A rotation issues a new key and lets the owner's other keys run on for an overlap window
(they expire at its end), so a deployment can switch keys without a moment when neither
works. A key authenticates while it is neither revoked nor expired.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paymend.domain.errors import Conflict, NotFound
from paymend.store.tables import merchant_keys, operator_keys

LAST_USED_RESOLUTION = timedelta(minutes=1)  # `last_used_at` is written at most this often


@dataclass(frozen=True, slots=True)
class KeyKind:
    """Which owners' keys: their table, the owner column and the secret's prefix."""

    table: sa.Table
    owner: str  # the owner column, e.g. merchant_id
    prefix: str  # sk_… for merchants, opk_… for operators


MERCHANT = KeyKind(merchant_keys, "merchant_id", "sk")
OPERATOR = KeyKind(operator_keys, "operator_id", "opk")


class KeyStatus(StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"  # its rotation's overlap (or its lifetime) ended
    REVOKED = "revoked"


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    owner_id: str
    hint: str
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None

    def status(self, now: datetime) -> KeyStatus:
        if self.revoked_at is not None:
            return KeyStatus.REVOKED
        if self.expires_at is not None and self.expires_at <= now:
            return KeyStatus.EXPIRED
        return KeyStatus.ACTIVE


def hash_key(secret: str) -> str:
    # keys carry 256 random bits, so a fast hash is enough (no password stretching)
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def new_key_id() -> str:
    """`key_` and 120 random bits, 24 base32 characters like engine ids (the store has no
    id factory; keys are issued rarely, so their index needs no time order)."""
    return "key_" + base64.b32encode(secrets.token_bytes(15)).decode().lower()


def issue(
    conn: Connection,
    kind: KeyKind,
    owner_id: str,
    now: datetime,
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """A new key for the owner; returns it with its secret, which is not kept anywhere."""
    secret = new_secret(kind.prefix)
    key = ApiKey(new_key_id(), owner_id, f"{kind.prefix}_…{secret[-4:]}", now, expires_at)
    conn.execute(
        kind.table.insert().values(
            {
                "id": key.id,
                kind.owner: owner_id,
                "key_hash": hash_key(secret),
                "hint": key.hint,
                "created_at": now,
                "expires_at": expires_at,
            }
        )
    )
    return key, secret


def of_owner(conn: Connection, kind: KeyKind, owner_id: str) -> list[ApiKey]:
    """The owner's keys, oldest first, revoked and expired ones included."""
    t = kind.table
    rows = conn.execute(
        sa.select(t).where(t.c[kind.owner] == owner_id).order_by(t.c.created_at, t.c.id)
    )
    return [_key(kind, r) for r in rows]


def expire_others(
    conn: Connection, kind: KeyKind, owner_id: str, keep: str, until: datetime, now: datetime
) -> list[ApiKey]:
    """Let every other working key of the owner run until `until` at the latest (a
    rotation's overlap); return the keys whose expiry moved."""
    moved = [
        k
        for k in of_owner(conn, kind, owner_id)
        if k.id != keep
        and k.status(now) == "active"
        and (k.expires_at is None or k.expires_at > until)
    ]
    if moved:
        t = kind.table
        conn.execute(t.update().where(t.c.id.in_([k.id for k in moved])).values(expires_at=until))
    return [
        ApiKey(k.id, k.owner_id, k.hint, k.created_at, until, None, k.last_used_at) for k in moved
    ]


def revoke(conn: Connection, kind: KeyKind, owner_id: str, key_id: str, now: datetime) -> ApiKey:
    """Revoke one of the owner's keys now (NotFound: not theirs; Conflict: revoked)."""
    t = kind.table
    row = conn.execute(sa.select(t).where(t.c.id == key_id, t.c[kind.owner] == owner_id)).first()
    if row is None:
        raise NotFound("key_not_found", f"no key '{key_id}' of {owner_id}", param="key_id")
    if row.revoked_at is not None:
        raise Conflict("key_already_revoked", f"key '{key_id}' is already revoked")
    conn.execute(t.update().where(t.c.id == key_id).values(revoked_at=now))
    old = _key(kind, row)
    return ApiKey(
        old.id, old.owner_id, old.hint, old.created_at, old.expires_at, now, old.last_used_at
    )


def find_working(conn: Connection, kind: KeyKind, digest: str, now: datetime) -> ApiKey | None:
    """The key with this hash if it works now; notes that it was used (to the minute)."""
    t = kind.table
    row = conn.execute(sa.select(t).where(t.c.key_hash == digest)).first()
    if row is None:
        return None
    key = _key(kind, row)
    if key.status(now) != "active":
        return None
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        conn.execute(t.update().where(t.c.id == key.id).values(last_used_at=now))
    return key


def _key(kind: KeyKind, r: sa.Row[Any]) -> ApiKey:
    return ApiKey(
        r.id,
        getattr(r, kind.owner),
        r.hint,
        r.created_at,
        r.expires_at,
        r.revoked_at,
        r.last_used_at,
    )
