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

from fastapi import Request
from fastapi.responses import JSONResponse

from paymend.api.errors import error_body
from paymend.domain.errors import InvalidInput, PaymendError
from paymend.engine.runtime import Runtime
from paymend.observability import get_logger
from paymend.store import idempotency
from paymend.store.database import Connection
from paymend.store.idempotency import Claim, Encoded, KeyTaken, NewKey, Replay, Resource

log = get_logger("paymend.api")
REPLAYED = {"Idempotent-Replayed": "true"}
KEY_HEADER = "Idempotency-Key"


def idempotent() -> dict[str, Any]:
    """The `openapi_extra` of a route that takes an Idempotency-Key, which it reads with
    `key_of`. Not a FastAPI header parameter: FastAPI works out on every request whether
    a parameter's `str | None` is a sequence, a dozen calls that were 2 % of a payment's
    instructions (callgrind, bench/payment_cpu.py). A new dict for each route, as the
    document's completion adds to its schema."""
    return {
        "parameters": [
            {
                "name": KEY_HEADER,
                "in": "header",
                "required": False,
                "description": "1 to 255 characters; the same key with the same body replays "
                "the first response",
                "schema": {"type": "string", "minLength": 1, "maxLength": 255},
            }
        ]
    }


def key_of(request: Request) -> str | None:
    """The request's Idempotency-Key, None without one (the first, if it came twice)."""
    return request.headers.get(KEY_HEADER)


Handler = Callable[[Claim | None], Awaitable[tuple[int, dict[str, Any]]]]
Render = Callable[[Resource], Awaitable[dict[str, Any]]]
# gets the key to claim with what it creates; returns status, body, and whether the
# body was stored as the key's answer in the engine's last transaction
Creating = Callable[[NewKey], Awaitable[tuple[int, dict[str, Any], bool]]]


async def run_creating(
    runtime: Runtime,
    merchant_id: str,
    key: str | None,
    path: str,
    body: dict[str, Any],
    creating: Creating,
    handler: Handler,
    render: Render,
    *,
    status: int,
) -> JSONResponse:
    """`run_once` for a request that creates its resource, in two transactions fewer:
    `creating` claims the key in the transaction that creates the resource and stores
    the answer in the one that records its outcome. A key already in use (`KeyTaken`),
    or an error before anything was created, goes the long way through `run_once`
    (replay, conflict, take-over), so the answers are the same as claiming first."""
    if key is None:
        return await run_once(runtime, merchant_id, key, path, body, handler, render, status=status)
    _check(key)
    now = runtime.clock.now()
    digest = idempotency.request_hash(path, body)
    new = NewKey(merchant_id, key, path, digest, runtime.presence.id, now)
    try:
        code, payload, answered = await creating(new)
    except KeyTaken:
        return await run_once(runtime, merchant_id, key, path, body, handler, render, status=status)
    except PaymendError as exc:
        if exc.changed_nothing:
            # nothing was claimed: the key may hold an earlier answer, else this error
            error = exc

            async def again(_claim: Claim | None) -> tuple[int, dict[str, Any]]:
                raise error

            return await run_once(
                runtime, merchant_id, key, path, body, again, render, status=status
            )
        await _keep_error(runtime, new.claim, exc.status, error_body_of(exc))
        raise
    except Exception:
        await _keep_error(runtime, new.claim, 500, _BODY_500)
        raise
    if not answered:
        done = runtime.clock.now()
        await runtime.store.run(
            lambda conn: idempotency.complete(conn, new.claim, code, payload, done)
        )
    return Answer(payload, status_code=code)


class Answer(JSONResponse):
    """A JSON response whose `Encoded` body is sent as the text the key stored, not
    encoded a second time."""

    def render(self, content: Any) -> bytes:
        if isinstance(content, Encoded):
            return content.text.encode()
        return super().render(content)


def _check(key: str) -> None:
    if not 1 <= len(key) <= 255:
        raise InvalidInput(
            "idempotency_key_invalid",
            "Idempotency-Key must be 1 to 255 characters",
            param=KEY_HEADER,
        )


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
    _check(key)
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
        await _keep_error(runtime, claim, 500, _BODY_500)
        raise
    done = runtime.clock.now()
    await runtime.store.run(lambda conn: idempotency.complete(conn, claim, code, payload, done))
    return JSONResponse(payload, status_code=code)


_BODY_500 = error_body(
    "internal_error",
    "the first request with this key failed unexpectedly; look the order up with "
    "GET /v1/payments?order_id=… before paying again",
    type="api_error",
)


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
