"""Merchants and their API keys. Keys are stored as SHA-256 hashes, shown once at creation."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paymend.domain.ids import MerchantId
from paymend.store.tables import merchants


@dataclass(frozen=True, slots=True)
class Merchant:
    id: MerchantId
    name: str
    api_key_hint: str
    created_at: datetime
    settings: dict[str, Any] = field(default_factory=dict)


def hash_key(api_key: str) -> str:
    # API keys carry 190 bits of entropy, so a fast hash is enough (no password stretching)
    return hashlib.sha256(api_key.encode()).hexdigest()


def new_api_key() -> str:
    return "sk_" + secrets.token_urlsafe(32)


def create(
    conn: Connection,
    merchant_id: MerchantId,
    name: str,
    now: datetime,
    settings: dict[str, Any] | None = None,
) -> tuple[Merchant, str]:
    """Create a merchant; return it with its plaintext key, which is not kept anywhere.

    `settings` holds what customers are told about the shop, e.g. `support_contact`.
    """
    key = new_api_key()
    hint = f"sk_…{key[-4:]}"
    conn.execute(
        merchants.insert().values(
            id=merchant_id,
            name=name,
            api_key_hash=hash_key(key),
            api_key_hint=hint,
            settings=settings or {},
            created_at=now,
        )
    )
    return Merchant(merchant_id, name, hint, now, dict(settings or {})), key


def by_api_key(conn: Connection, api_key: str) -> Merchant | None:
    return by_key_hash(conn, hash_key(api_key))


def by_key_hash(conn: Connection, digest: str) -> Merchant | None:
    row = conn.execute(sa.select(merchants).where(merchants.c.api_key_hash == digest)).first()
    return _merchant(row) if row else None


def _merchant(row: sa.Row[Any]) -> Merchant:
    return Merchant(
        MerchantId(row.id), row.name, row.api_key_hint, row.created_at, dict(row.settings)
    )
