"""Running a POST under an `Idempotency-Key`: replay, conflict, or do it once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi.responses import JSONResponse

from paymend.api.errors import error_body
from paymend.domain.errors import InvalidInput, PaymendError
from paymend.engine.runtime import Runtime
from paymend.observability import get_logger
from paymend.store import idempotency

log = get_logger("paymend.api")


async def run_once(
    runtime: Runtime,
    merchant_id: str,
    key: str | None,
    path: str,
    body: dict[str, Any],
    handler: Callable[[], Awaitable[tuple[int, dict[str, Any]]]],
) -> JSONResponse:
    if key is None:
        status, payload = await handler()
        return JSONResponse(payload, status_code=status)
    if not 1 <= len(key) <= 255:
        raise InvalidInput(
            "idempotency_key_invalid",
            "Idempotency-Key must be 1 to 255 characters",
            param="Idempotency-Key",
        )
    digest = idempotency.request_hash(path, body)
    now = runtime.clock.now()
    replay = await runtime.store.run(
        lambda conn: idempotency.claim(conn, merchant_id, key, path, digest, now)
    )
    if replay is not None:
        return JSONResponse(
            replay.body, status_code=replay.status, headers={"Idempotent-Replayed": "true"}
        )
    try:
        status, payload = await handler()
    except PaymendError as exc:
        if exc.changed_nothing:
            # free the key so the corrected request can use it
            await runtime.store.run(lambda conn: idempotency.release(conn, merchant_id, key))
        else:
            body = error_body(exc.code, exc.message, type=exc.type, param=exc.param)
            status, failed = exc.status, runtime.clock.now()
            await runtime.store.run(
                lambda conn: idempotency.complete(conn, merchant_id, key, status, body, failed)
            )
        raise
    except Exception:
        # something may have been written: keep the key, answering 500 on replay, so a
        # retry cannot pay twice; the caller checks the order with GET /v1/payments
        failed = runtime.clock.now()
        body = error_body(
            "internal_error",
            "the first request with this key failed unexpectedly; look the order up with "
            "GET /v1/payments?order_id=… before paying again",
            type="api_error",
        )
        await runtime.store.run(
            lambda conn: idempotency.complete(conn, merchant_id, key, 500, body, failed)
        )
        raise
    done = runtime.clock.now()
    await runtime.store.run(
        lambda conn: idempotency.complete(conn, merchant_id, key, status, payload, done)
    )
    return JSONResponse(payload, status_code=status)
