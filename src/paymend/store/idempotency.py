"""Idempotency keys: the same key and body replays the first response.

A key is claimed (status `in_progress`) in its own transaction before the work starts, so
concurrent requests with one key race on the primary key and exactly one wins; the
others see `in_progress` and get a 409 telling them to retry.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.engine import Connection

from paymend.domain.errors import Conflict
from paymend.store.tables import idempotency_keys

IN_PROGRESS = "in_progress"
COMPLETED = "completed"


@dataclass(frozen=True, slots=True)
class Replay:
    status: int
    body: dict[str, Any]


def request_hash(path: str, body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{path}\n{canonical}".encode()).hexdigest()


def claim(
    conn: Connection, merchant_id: str, key: str, path: str, digest: str, now: datetime
) -> Replay | None:
    """Claim `key` for this request, or return the stored response to replay.

    Raises Conflict when the key was used with another request or is still in flight.
    """
    row = conn.execute(
        sa.select(idempotency_keys).where(
            idempotency_keys.c.merchant_id == merchant_id, idempotency_keys.c.key == key
        )
    ).first()
    if row is None:
        try:
            with conn.begin_nested():
                conn.execute(
                    idempotency_keys.insert().values(
                        merchant_id=merchant_id,
                        key=key,
                        request_hash=digest,
                        request_path=path,
                        status=IN_PROGRESS,
                        created_at=now,
                        updated_at=now,
                    )
                )
        except exc.IntegrityError:
            raise _in_flight(key) from None
        return None
    if row.request_hash != digest or row.request_path != path:
        raise Conflict(
            "idempotency_key_reused",
            f"Idempotency-Key '{key}' was already used with a different request; "
            "use a new key for a new request",
            param="Idempotency-Key",
        )
    if row.status == IN_PROGRESS:
        raise _in_flight(key)
    return Replay(row.response_status, dict(row.response_body))


def complete(
    conn: Connection, merchant_id: str, key: str, status: int, body: dict[str, Any], now: datetime
) -> None:
    conn.execute(
        idempotency_keys.update()
        .where(idempotency_keys.c.merchant_id == merchant_id, idempotency_keys.c.key == key)
        .values(status=COMPLETED, response_status=status, response_body=body, updated_at=now)
    )


def release(conn: Connection, merchant_id: str, key: str) -> None:
    """Forget a claim whose request changed nothing (it failed validation)."""
    conn.execute(
        idempotency_keys.delete().where(
            idempotency_keys.c.merchant_id == merchant_id,
            idempotency_keys.c.key == key,
            idempotency_keys.c.status == IN_PROGRESS,
        )
    )


def _in_flight(key: str) -> Conflict:
    return Conflict(
        "idempotency_request_in_progress",
        f"a request with Idempotency-Key '{key}' is still being processed; "
        "retry shortly to get its result",
        param="Idempotency-Key",
    )
