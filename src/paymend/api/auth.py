"""Merchant authentication by bearer API key (`Authorization: Bearer sk_…`)."""

from __future__ import annotations

from fastapi import Request

from paymend.domain.errors import PaymendError
from paymend.engine.runtime import Runtime
from paymend.store import merchants
from paymend.store.merchants import Merchant


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
    found = await runtime.store.run(lambda conn: merchants.by_api_key(conn, key.strip()))
    if found is None:
        raise Unauthenticated("api_key_invalid", "this API key is not valid")
    return found
