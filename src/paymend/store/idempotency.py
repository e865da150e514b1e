"""Idempotency keys: the same key and body replays the first response.

A key is claimed (status `in_progress`) in its own transaction before the work starts, so
concurrent requests with one key race on the primary key and exactly one wins; the
others see `in_progress` and get a 409 telling them to retry.

A claim names its owner (the process instance running the request) and carries a token
of its own. What the request creates (a payment, a refund, a compensation) is linked to
the claim in the very transaction that creates it (`link`), so no crash can leave a
created resource unlinked. When the owner dies before the answer is stored, or the claim
outlives a hard cap (a request hung in a live process), the next request with the key
recovers it: a claim with a resource answers with that resource as it is now; one
without is taken over, under a new token, and the request runs.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.engine import Connection

from paymend.domain.errors import Conflict
from paymend.store.tables import idempotency_keys

IN_PROGRESS = "in_progress"
COMPLETED = "completed"

OwnerDead = Callable[[Connection, str | None], bool]


@dataclass(frozen=True, slots=True)
class Claim:
    """This request's hold on a key; what it creates is linked under `token`."""

    merchant_id: str
    key: str
    token: str


@dataclass(frozen=True, slots=True)
class Replay:
    """The stored first answer."""

    status: int
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Resource:
    """Answer with this resource as it is now: the first answer was never stored (its
    request died) or is not worth replaying (it was an error after the resource was made)."""

    kind: str
    id: str


def request_hash(path: str, body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{path}\n{canonical}".encode()).hexdigest()


def _where(merchant_id: str, key: str) -> tuple[sa.ColumnElement[bool], ...]:
    return (idempotency_keys.c.merchant_id == merchant_id, idempotency_keys.c.key == key)


def _of(claim: Claim) -> tuple[sa.ColumnElement[bool], ...]:
    return (*_where(claim.merchant_id, claim.key), idempotency_keys.c.claim_token == claim.token)


def claim(
    conn: Connection,
    merchant_id: str,
    key: str,
    path: str,
    digest: str,
    now: datetime,
    *,
    owner: str | None = None,
    owner_dead: OwnerDead | None = None,
    expires_after: timedelta | None = None,
) -> Claim | Replay | Resource:
    """Claim `key` for this request, or say what to answer instead.

    Raises Conflict when the key was used with another request, or while its request is
    still running: its owner alive and the claim younger than `expires_after`.
    """
    row = conn.execute(sa.select(idempotency_keys).where(*_where(merchant_id, key))).first()
    token = secrets.token_hex(16)
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
                        owner=owner,
                        claim_token=token,
                    )
                )
        except exc.IntegrityError:
            raise _in_flight(key) from None
        return Claim(merchant_id, key, token)
    if row.request_hash != digest or row.request_path != path:
        raise Conflict(
            "idempotency_key_reused",
            f"Idempotency-Key '{key}' was already used with a different request; "
            "use a new key for a new request",
            param="Idempotency-Key",
        )
    if row.status == COMPLETED:
        if row.response_body is None and row.resource_id is not None:
            return Resource(row.resource_kind, row.resource_id)
        return Replay(row.response_status, dict(row.response_body))
    expired = expires_after is not None and row.updated_at < now - expires_after
    dead = owner_dead is not None and owner_dead(conn, row.owner)
    if not (expired or dead):
        raise _in_flight(key)
    if row.resource_id is not None:
        # its request died after creating something: that is the answer, from now on
        conn.execute(
            idempotency_keys.update()
            .where(*_where(merchant_id, key), idempotency_keys.c.status == IN_PROGRESS)
            .values(status=COMPLETED, owner=None, claim_token=None, updated_at=now)
        )
        return Resource(row.resource_kind, row.resource_id)
    # it created nothing: take the claim over (one of several retries wins)
    taken = conn.execute(
        idempotency_keys.update()
        .where(
            *_where(merchant_id, key),
            idempotency_keys.c.status == IN_PROGRESS,
            idempotency_keys.c.resource_id.is_(None),
            _same(idempotency_keys.c.claim_token, row.claim_token),
        )
        .values(owner=owner, claim_token=token, updated_at=now)
    )
    if taken.rowcount != 1:
        raise _in_flight(key)
    return Claim(merchant_id, key, token)


def _same(column: sa.ColumnElement[Any], value: Any) -> sa.ColumnElement[bool]:
    return column.is_(None) if value is None else column == value


def link(conn: Connection, claim: Claim | None, kind: str, resource_id: str) -> None:
    """Record, in the transaction that creates it, what the claimed request made. Raises
    Conflict (rolling the creation back) when the claim is no longer this request's: it
    was taken over after its owner was taken for dead."""
    if claim is None:
        return
    linked = conn.execute(
        idempotency_keys.update()
        .where(
            *_of(claim),
            idempotency_keys.c.status == IN_PROGRESS,
            idempotency_keys.c.resource_id.is_(None),
        )
        .values(resource_kind=kind, resource_id=resource_id)
    )
    if linked.rowcount != 1:
        raise _in_flight(claim.key)


def linked(conn: Connection, claim: Claim) -> Resource | None:
    row = conn.execute(
        sa.select(idempotency_keys.c.resource_kind, idempotency_keys.c.resource_id).where(
            *_of(claim)
        )
    ).first()
    if row is None or row.resource_id is None:
        return None
    return Resource(row.resource_kind, row.resource_id)


def complete(
    conn: Connection,
    claim: Claim,
    status: int | None,
    body: dict[str, Any] | None,
    now: datetime,
) -> None:
    """Store the answer (None: answer with the linked resource as it is on each replay)."""
    conn.execute(
        idempotency_keys.update()
        .where(*_of(claim), idempotency_keys.c.status == IN_PROGRESS)
        .values(
            status=COMPLETED,
            response_status=status,
            response_body=body,
            owner=None,
            claim_token=None,
            updated_at=now,
        )
    )


def release(conn: Connection, claim: Claim) -> None:
    """Forget a claim whose request changed nothing (it failed validation)."""
    conn.execute(
        idempotency_keys.delete().where(
            *_of(claim),
            idempotency_keys.c.status == IN_PROGRESS,
            idempotency_keys.c.resource_id.is_(None),
        )
    )


def _in_flight(key: str) -> Conflict:
    return Conflict(
        "idempotency_request_in_progress",
        f"a request with Idempotency-Key '{key}' is still being processed; "
        "retry shortly to get its result",
        param="Idempotency-Key",
    )
