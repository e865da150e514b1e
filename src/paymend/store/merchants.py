"""Merchants, named uniquely, and their API keys (store/keys.py: several per merchant,
stored hashed, shown once)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paymend.domain.errors import Conflict, NotFound
from paymend.domain.ids import MerchantId
from paymend.domain.merchant import Merchant
from paymend.store import keys
from paymend.store.keys import ApiKey
from paymend.store.tables import merchants


def hash_key(api_key: str) -> str:
    return keys.hash_key(api_key)


def create(
    conn: Connection,
    merchant_id: MerchantId,
    name: str,
    now: datetime,
    settings: dict[str, Any] | None = None,
) -> tuple[Merchant, str]:
    """Create a merchant with one key; return it with the plaintext key, which is not kept
    anywhere. A name already taken is a Conflict (the database refuses it too).

    `settings` holds what customers are told about the shop, e.g. `support_contact`.
    """
    taken = by_name(conn, name)
    if taken is not None:
        raise Conflict(
            "merchant_name_taken", f"a merchant named '{name}' exists: {taken.id}", param="name"
        )
    conn.execute(
        merchants.insert().values(
            id=merchant_id, name=name, settings=settings or {}, created_at=now
        )
    )
    _, secret = keys.issue(conn, keys.MERCHANT, merchant_id, now)
    return Merchant(merchant_id, name, now, dict(settings or {})), secret


def get(conn: Connection, ref: str) -> Merchant:
    """A merchant by id, else by name."""
    row = conn.execute(sa.select(merchants).where(merchants.c.id == ref)).first()
    found = _merchant(row) if row else by_name(conn, ref)
    if found is None:
        raise NotFound("merchant_not_found", f"no merchant '{ref}'", param="merchant")
    return found


def every(conn: Connection, limit: int = 500) -> list[Merchant]:
    """Merchants by name (the console's merchant picker)."""
    rows = conn.execute(sa.select(merchants).order_by(merchants.c.name).limit(limit))
    return [_merchant(r) for r in rows]


def by_name(conn: Connection, name: str) -> Merchant | None:
    row = conn.execute(sa.select(merchants).where(merchants.c.name == name)).first()
    return _merchant(row) if row else None


def by_api_key(conn: Connection, api_key: str, now: datetime) -> Merchant | None:
    found = authenticate(conn, hash_key(api_key), now)
    return found[0] if found else None


def authenticate(conn: Connection, digest: str, now: datetime) -> tuple[Merchant, ApiKey] | None:
    """The merchant whose working key has this hash, and that key."""
    key = keys.find_working(conn, keys.MERCHANT, digest, now)
    if key is None:
        return None
    row = conn.execute(sa.select(merchants).where(merchants.c.id == key.owner_id)).one()
    return _merchant(row), key


def _merchant(row: sa.Row[Any]) -> Merchant:
    return Merchant(MerchantId(row.id), row.name, row.created_at, dict(row.settings))
