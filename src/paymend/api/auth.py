"""Authentication by bearer key: merchants (`sk_…`) on the merchant API, operators
(`opk_…`) on the ops API, each by `Authorization: Bearer <key>` and nothing else.

A merchant key is looked up at most every KEY_CACHE_TTL_S per process (payments are the
hot path); its expiry is checked on every request against the clock, so an expired key
stops at once and a revoked one within KEY_CACHE_TTL_S (at once in the process that
revoked it). Operator keys are looked up on every request: the ops API is not a hot
path, and an operator's revocation must hold at once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request

from paymend.domain.errors import Forbidden, Unauthenticated
from paymend.domain.merchant import Merchant
from paymend.domain.roles import Role
from paymend.engine.runtime import Runtime
from paymend.store import keys, merchants, operators
from paymend.store.operators import Operator

KEY_CACHE_TTL_S = 5.0  # a key revoked in another process stops working within this long
KEY_CACHE_SIZE = 10_000
# key hash -> (merchant, the key's expiry, cached until on the monotonic clock)
KeyCache = dict[str, tuple[Merchant, datetime | None, float]]


def bearer(request: Request) -> str | None:
    """The key of `Authorization: Bearer <key>`; None for anything else."""
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key or " " in key:
        return None
    return key


async def merchant(request: Request) -> Merchant:
    key = bearer(request)
    if key is None:
        raise Unauthenticated(
            "api_key_missing", "send your secret key as 'Authorization: Bearer sk_…'"
        )
    runtime: Runtime = request.app.state.runtime
    cache: KeyCache = request.app.state.key_cache
    digest = keys.hash_key(key)
    now, mono = runtime.clock.now(), runtime.clock.monotonic()
    hit = cache.get(digest)
    if hit is not None and hit[2] > mono:
        found, expires_at, _ = hit
        if expires_at is None or expires_at > now:
            return found
        del cache[digest]
        raise Unauthenticated("api_key_invalid", "this API key is not valid")
    looked = await runtime.store.run(lambda conn: merchants.authenticate(conn, digest, now))
    if looked is None:
        cache.pop(digest, None)
        raise Unauthenticated("api_key_invalid", "this API key is not valid")
    if len(cache) >= KEY_CACHE_SIZE:
        cache.clear()
    cache[digest] = (looked[0], looked[1].expires_at, mono + KEY_CACHE_TTL_S)
    return looked[0]


async def operator(request: Request) -> Operator:
    key = bearer(request)
    if key is None:
        raise Unauthenticated(
            "operator_key_missing", "send your operator key as 'Authorization: Bearer opk_…'"
        )
    runtime: Runtime = request.app.state.runtime
    digest = keys.hash_key(key)
    now = runtime.clock.now()
    found = await runtime.store.run(lambda conn: operators.authenticate(conn, digest, now))
    if found is None:
        raise Unauthenticated(
            "operator_key_invalid", "this operator key is unknown, revoked or expired"
        )
    request.state.operator_key = found[1]  # GET /v1/ops/me shows it
    return found[0]


class RoleCheck:
    """A dependency: the authenticated operator, if their role may do what `needed` may.
    A class, so the OpenAPI document can read which role a route needs (api/openapi.py)."""

    def __init__(self, needed: Role) -> None:
        self.needed = needed

    async def __call__(self, request: Request) -> Operator:
        who = await operator(request)
        if not who.role.allows(self.needed):
            raise Forbidden(
                "role_insufficient",
                f"this needs the {self.needed.value} role or above; {who.name} is {who.role.value}",
            )
        return who


def role(needed: Role) -> RoleCheck:
    return RoleCheck(needed)


Viewer = Annotated[Operator, Depends(role(Role.VIEWER))]
Support = Annotated[Operator, Depends(role(Role.SUPPORT))]
Ops = Annotated[Operator, Depends(role(Role.OPS))]
Admin = Annotated[Operator, Depends(role(Role.ADMIN))]
