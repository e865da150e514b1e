"""Running a POST under an `Idempotency-Key`: replay, conflict, or do it once.

The handler gets the request's claim and passes it to the engine, which links what it
creates to the key in the same transaction (store/idempotency.py). A key whose request
died (its process is known dead, or the claim is older than the hard cap) answers with
what that request created, as it is now, through `render`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from fastapi.responses import JSONResponse

from paymend.api.errors import error_body
from paymend.domain.errors import InvalidInput, PaymendError
from paymend.engine.runtime import Runtime
from paymend.observability import get_logger
from paymend.store import idempotency
from paymend.store.database import Connection
from paymend.store.idempotency import Claim, Replay, Resource

log = get_logger("paymend.api")
REPLAYED = {"Idempotent-Replayed": "true"}

Handler = Callable[[Claim | None], Awaitable[tuple[int, dict[str, Any]]]]
Render = Callable[[Resource], Awaitable[dict[str, Any]]]


async def run_once(
    runtime: Runtime,
    merchant_id: str,
    key: str | None,
    path: str,
    body: dict[str, Any],
    handler: Handler,
    render: Render,
    *,
    status: int,
) -> JSONResponse:
    """Run `handler` once per key. `render` turns a linked resource into the body answered
    with `status` when the first answer is not stored."""
    if key is None:
        code, payload = await handler(None)
        return JSONResponse(payload, status_code=code)
    if not 1 <= len(key) <= 255:
        raise InvalidInput(
            "idempotency_key_invalid",
            "Idempotency-Key must be 1 to 255 characters",
            param="Idempotency-Key",
        )
    digest = idempotency.request_hash(path, body)
    now = runtime.clock.now()
    presence = runtime.presence
    expires = timedelta(seconds=runtime.config.idempotency.claim_expires_after)
    outcome = await runtime.store.run(
        lambda conn: idempotency.claim(
            conn,
            merchant_id,
            key,
            path,
            digest,
            now,
            owner=presence.id,
            owner_dead=presence.owner_dead,
            expires_after=expires,
        )
    )
    if isinstance(outcome, Replay):
        return JSONResponse(outcome.body, status_code=outcome.status, headers=REPLAYED)
    if isinstance(outcome, Resource):
        log.info("idempotency_key_recovered", kind=outcome.kind, resource_id=outcome.id)
        return JSONResponse(await render(outcome), status_code=status, headers=REPLAYED)
    claim = outcome
    try:
        code, payload = await handler(claim)
    except PaymendError as exc:
        if exc.changed_nothing:
            # free the key so the corrected request can use it
            await runtime.store.run(lambda conn: idempotency.release(conn, claim))
            raise
        await _keep_error(runtime, claim, exc.status, error_body_of(exc))
        raise
    except Exception:
        # something may have been written: keep the key (answering with what it made, or
        # 500 when nothing was linked) so a retry cannot pay twice
        body_500 = error_body(
            "internal_error",
            "the first request with this key failed unexpectedly; look the order up with "
            "GET /v1/payments?order_id=… before paying again",
            type="api_error",
        )
        await _keep_error(runtime, claim, 500, body_500)
        raise
    done = runtime.clock.now()
    await runtime.store.run(lambda conn: idempotency.complete(conn, claim, code, payload, done))
    return JSONResponse(payload, status_code=code)


def error_body_of(exc: PaymendError) -> dict[str, Any]:
    return error_body(exc.code, exc.message, type=exc.type, param=exc.param, extra=exc.extra)


async def _keep_error(runtime: Runtime, claim: Claim, status: int, body: dict[str, Any]) -> None:
    """A request failed after writing something. If it created a resource, replays answer
    with that resource as it is then (the worker finishes it); else with this error."""
    failed = runtime.clock.now()

    def write(conn: Connection) -> None:
        if idempotency.linked(conn, claim) is not None:
            idempotency.complete(conn, claim, None, None, failed)
        else:
            idempotency.complete(conn, claim, status, body, failed)

    await runtime.store.run(write)
