"""Idempotency keys: the same key and body replays the first response.

A key is claimed (status `in_progress`) before the work starts, so concurrent requests
with one key race on the primary key and exactly one wins; the others see `in_progress`
and get a 409 telling them to retry. A request that creates something (a payment) claims
its key in the very transaction that creates it (`NewKey`, `take`): a key already in
the table raises `KeyTaken` and rolls the creation back, and the request then goes the
long way (`claim` in a transaction of its own: replay, conflict or take-over). Its answer
is stored in the transaction that records the outcome. Every other request claims first.

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
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection

from paymend.domain.entropy import random_hex
from paymend.domain.errors import Conflict
from paymend.store import json_text
from paymend.store.prepared import Prepared
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


@dataclass(frozen=True, slots=True)
class NewKey:
    """A key to claim in the transaction that creates the request's resource (`take`)."""

    merchant_id: str
    key: str
    path: str
    digest: str
    owner: str | None
    now: datetime
    token: str = field(default_factory=lambda: random_hex(16))

    @property
    def claim(self) -> Claim:
        """The claim this key becomes once `take` committed."""
        return Claim(self.merchant_id, self.key, self.token)


class KeyTaken(Exception):
    """`take` found the key in use (answered, running, or left by a dead request): the
    creation is rolled back and the request must claim the key on its own first."""


def request_hash(path: str, body: Any) -> str:
    """SHA-256 of the path and the body as sorted, compact JSON. orjson writes for a
    request body (the API models' dump: no floats) the bytes the standard library's
    `json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)` writes, which
    stored keys were hashed with, in a tenth of the time; what orjson refuses (an
    integer beyond 64 bits) is hashed as before."""
    try:
        canonical = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        canonical = text.encode()
    return hashlib.sha256(path.encode() + b"\n" + canonical).hexdigest()


# Built once: the hot path executes them with parameters (SQLAlchemy caches the compiled
# form), where `.where(...)`/`.values(...)` per call would rebuild them every time.
_K = idempotency_keys.c
_THIS = (_K.merchant_id == sa.bindparam("b_merchant"), _K.key == sa.bindparam("b_key"))
_MINE = (*_THIS, _K.claim_token == sa.bindparam("b_token"))
_SELECT = sa.select(idempotency_keys).where(*_THIS)
_INSERT = Prepared(idempotency_keys.insert())  # the payment path's: store/prepared.py
_LINK = (
    idempotency_keys.update()
    .where(*_MINE, _K.status == IN_PROGRESS, _K.resource_id.is_(None))
    .values(resource_kind=sa.bindparam("kind"), resource_id=sa.bindparam("rid"))
)
_COMPLETE = (
    idempotency_keys.update()
    .where(*_MINE, _K.status == IN_PROGRESS)
    .values(
        status=COMPLETED,
        response_status=sa.bindparam("code"),
        response_body=sa.bindparam("body"),
        owner=None,
        claim_token=None,
        updated_at=sa.bindparam("now"),
    )
)


# The same, for an answer already encoded (`Encoded`): its text is stored as it is, cast
# to JSONB on PostgreSQL; SQLite keeps JSON as text anyway
_COMPLETE_TEXT = Prepared(_COMPLETE.values(response_body=sa.bindparam("body", type_=sa.Text())))
_COMPLETE_PG_TEXT = Prepared(
    _COMPLETE.values(response_body=sa.cast(sa.bindparam("body", type_=sa.Text()), JSONB()))
)
_LINK_RUN = Prepared(_LINK)


class Encoded(dict[str, Any]):
    """A response body with its JSON text, encoded once: the key's stored answer and the
    response's bytes are that one text (compact JSON, as a JSONResponse's)."""

    __slots__ = ("text",)

    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__(body)
        self.text = json_text.dumps(body)


def _mine(claim: Claim) -> dict[str, Any]:
    return {"b_merchant": claim.merchant_id, "b_key": claim.key, "b_token": claim.token}


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
    row = conn.execute(_SELECT, {"b_merchant": merchant_id, "b_key": key}).first()
    token = random_hex(16)
    if row is None:
        try:
            with conn.begin_nested():
                _INSERT.run(conn, _row(merchant_id, key, path, digest, owner, token, now))
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


def _row(
    merchant_id: str,
    key: str,
    path: str,
    digest: str,
    owner: str | None,
    token: str,
    now: datetime,
    kind: str | None = None,
    resource_id: str | None = None,
) -> dict[str, Any]:
    return {
        "merchant_id": merchant_id,
        "key": key,
        "request_hash": digest,
        "request_path": path,
        "status": IN_PROGRESS,
        "created_at": now,
        "updated_at": now,
        "owner": owner,
        "claim_token": token,
        "resource_kind": kind,
        "resource_id": resource_id,
    }


def take(conn: Connection, new: NewKey, kind: str, resource_id: str) -> Claim:
    """Claim a key nobody used yet, linked to what this transaction creates. Raises
    KeyTaken when the key is in the table (the transaction must then roll back; on
    PostgreSQL it is aborted anyway). Call it first in the transaction: a replay must
    not be answered by a check that its own first request made fail (the order taken)."""
    row = _row(new.merchant_id, new.key, new.path, new.digest, new.owner, new.token, new.now)
    row.update(resource_kind=kind, resource_id=resource_id)
    try:
        _INSERT.run(conn, row)
    except exc.IntegrityError as error:
        raise KeyTaken(new.key) from error
    return new.claim


def _same(column: sa.ColumnElement[Any], value: Any) -> sa.ColumnElement[bool]:
    return column.is_(None) if value is None else column == value


def link(conn: Connection, claim: Claim | NewKey | None, kind: str, resource_id: str) -> None:
    """Record, in the transaction that creates it, what the claimed request made (a
    `NewKey` is claimed here, see `take`). Raises Conflict (rolling the creation back)
    when the claim is no longer this request's: it was taken over after its owner was
    taken for dead."""
    if claim is None:
        return
    if isinstance(claim, NewKey):
        take(conn, claim, kind, resource_id)
        return
    if _LINK_RUN.run(conn, {**_mine(claim), "kind": kind, "rid": resource_id}) != 1:
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
    if isinstance(body, Encoded):
        text = _COMPLETE_PG_TEXT if conn.dialect.name == "postgresql" else _COMPLETE_TEXT
        text.write(conn, {**_mine(claim), "code": status, "body": body.text, "now": now})
        return
    conn.execute(_COMPLETE, {**_mine(claim), "code": status, "body": body, "now": now})


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
