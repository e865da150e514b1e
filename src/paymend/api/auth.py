"""Merchant authentication by bearer API key (`Authorization: Bearer sk_…`)."""

from __future__ import annotations

import time

from fastapi import Request

from paymend.domain.errors import PaymendError
from paymend.engine.runtime import Runtime
from paymend.store import merchants
from paymend.store.merchants import Merchant

KEY_CACHE_TTL_S = 30.0  # a revoked key stops working within this long
KEY_CACHE_SIZE = 10_000
KeyCache = dict[str, tuple[Merchant, float]]  # key hash -> (merchant, expiry)


class Unauthenticated(PaymendError):
    status = 401
    type = "authentication_error"


async def merchant(request: Request) -> Merchant:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthenticated(
            "api_key_missing", "send your secret key as 'Authorization: Bearer sk_…'"
        )
    runtime: Runtime = request.app.state.runtime
    cache: KeyCache = request.app.state.key_cache
    digest = merchants.hash_key(key.strip())
    now = time.monotonic()
    hit = cache.get(digest)
    if hit is not None and hit[1] > now:
        return hit[0]
    found = await runtime.store.run(lambda conn: merchants.by_key_hash(conn, digest))
    if found is None:
        raise Unauthenticated("api_key_invalid", "this API key is not valid")
    if len(cache) >= KEY_CACHE_SIZE:
        cache.clear()
    cache[digest] = (found, now + KEY_CACHE_TTL_S)
    return found
