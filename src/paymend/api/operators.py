"""The admin part of the ops API: operators, their roles and keys, and merchants' keys
(engine/access.py does the work and the audit). A new key's secret is in the answer
that creates it and nowhere else, ever."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from paymend.api import ops_shapes as shapes
from paymend.api.auth import Admin, Viewer
from paymend.api.checked import checked_router
from paymend.api.ops import Text, needs
from paymend.api.ops_views import key_json, new_key_json, operator_json
from paymend.api.responses import errors
from paymend.domain.roles import Role
from paymend.engine.access import DEFAULT_OVERLAP_S, MAX_LIFETIME_S, MAX_OVERLAP_S
from paymend.engine.runtime import Runtime
from paymend.store.keys import ApiKey

router = checked_router(prefix="/v1/ops", tags=["ops"])
OPERATOR_NOT_FOUND = (404, ["operator_not_found"])
MERCHANT_NOT_FOUND = (404, ["merchant_not_found"])
REVOKE_ERRORS = (409, ["key_already_revoked"])
RoleName = Literal["viewer", "support", "ops", "admin"]
# strict: `true` or "3600" is a mistake, never a number of seconds
Lifetime = Annotated[StrictInt, Field(gt=0, le=MAX_LIFETIME_S)]


class OperatorIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9._-]*$")]
    role: RoleName
    expires_in_seconds: Lifetime | None = Field(None, description="the key's lifetime")


class RoleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: RoleName
    reason: Text | None = None


class RotateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    overlap_seconds: Annotated[StrictInt, Field(ge=0, le=MAX_OVERLAP_S)] = Field(
        DEFAULT_OVERLAP_S, description="how long the owner's other keys keep working"
    )
    expires_in_seconds: Lifetime | None = Field(None, description="the new key's lifetime")
    reason: Text | None = None


class RevokeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Text | None = None


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _keys(request: Request, found: list[ApiKey]) -> list[shapes.ApiKey]:
    now = _runtime(request).clock.now()
    return [key_json(k, now) for k in found]


@router.get(
    "/me",
    summary="The operator this key belongs to",
    description=needs("viewer"),
    response_model=shapes.Me,
)
async def me(request: Request, who: Viewer) -> JSONResponse:
    key: ApiKey = request.state.operator_key
    body: shapes.Me = {**operator_json(who), "key": key_json(key, _runtime(request).clock.now())}
    return JSONResponse(body)


@router.get(
    "/operators",
    summary="Operators with their roles and keys",
    description=needs("admin"),
    response_model=shapes.OperatorList,
)
async def list_operators(request: Request, _: Admin) -> JSONResponse:
    found = await _runtime(request).access.operators()
    data: list[shapes.OperatorWithKeys] = [
        {**operator_json(o), "keys": _keys(request, ks)} for o, ks in found
    ]
    return JSONResponse(shapes.OperatorList(object="list", data=data))


@router.post(
    "/operators",
    status_code=201,
    summary="Create an operator with a role and a first key (its secret shown once)",
    description=needs("admin"),
    response_model=shapes.NewOperator,
    responses=errors((409, ["operator_exists"])),
)
async def create_operator(body: OperatorIn, request: Request, who: Admin) -> JSONResponse:
    access = _runtime(request).access
    op, issued = await access.create_operator(
        body.name, Role(body.role), who.actor, body.expires_in_seconds
    )
    now = _runtime(request).clock.now()
    answer: shapes.NewOperator = {
        **operator_json(op),
        "key": new_key_json(issued, now),
        "expiring": [key_json(k, now) for k in issued.expiring],
    }
    return JSONResponse(answer, status_code=201)


@router.post(
    "/operators/{name}/role",
    summary="Give an operator another role",
    description=needs("admin"),
    response_model=shapes.Operator,
    responses=errors(OPERATOR_NOT_FOUND),
)
async def set_role(name: str, body: RoleIn, request: Request, who: Admin) -> JSONResponse:
    op = await _runtime(request).access.set_role(name, Role(body.role), who.actor, body.reason)
    return JSONResponse(operator_json(op))


@router.post(
    "/operators/{name}/keys",
    status_code=201,
    summary="Rotate an operator's key: a new one; the others expire after the overlap",
    description=needs("admin"),
    response_model=shapes.RotatedOperatorKey,
    responses=errors(OPERATOR_NOT_FOUND),
)
async def rotate_operator_key(
    name: str, body: RotateIn, request: Request, who: Admin
) -> JSONResponse:
    op, issued = await _runtime(request).access.rotate_operator_key(
        name, who.actor, body.overlap_seconds, body.expires_in_seconds, body.reason
    )
    now = _runtime(request).clock.now()
    answer: shapes.RotatedOperatorKey = {
        "operator": op.name,
        "role": op.role.value,
        "key": new_key_json(issued, now),
        "expiring": [key_json(k, now) for k in issued.expiring],
    }
    return JSONResponse(answer, status_code=201)


@router.post(
    "/operators/{name}/keys/{key_id}/revoke",
    summary="Revoke one of an operator's keys: it stops working at once",
    description=needs("admin"),
    response_model=shapes.ApiKey,
    responses=errors((404, ["operator_not_found", "key_not_found"]), REVOKE_ERRORS),
)
async def revoke_operator_key(
    name: str, key_id: str, body: RevokeIn, request: Request, who: Admin
) -> JSONResponse:
    access = _runtime(request).access
    (key,) = await access.revoke_operator_keys(name, key_id, who.actor, body.reason)
    return JSONResponse(key_json(key, _runtime(request).clock.now()))


@router.get(
    "/merchants/{merchant}/keys",
    summary="A merchant's API keys (by merchant id or name)",
    description=needs("admin"),
    response_model=shapes.MerchantKeys,
    responses=errors(MERCHANT_NOT_FOUND),
)
async def merchant_keys(merchant: str, request: Request, _: Admin) -> JSONResponse:
    found, ks = await _runtime(request).access.merchant_keys(merchant)
    body = shapes.MerchantKeys(
        merchant_id=found.id, merchant=found.name, object="list", data=_keys(request, ks)
    )
    return JSONResponse(body)


@router.post(
    "/merchants/{merchant}/keys",
    status_code=201,
    summary="Rotate a merchant's key: a new one; the others expire after the overlap",
    description=needs("admin"),
    response_model=shapes.RotatedMerchantKey,
    responses=errors(MERCHANT_NOT_FOUND),
)
async def rotate_merchant_key(
    merchant: str, body: RotateIn, request: Request, who: Admin
) -> JSONResponse:
    found, issued = await _runtime(request).access.rotate_merchant_key(
        merchant, who.actor, body.overlap_seconds, body.expires_in_seconds, body.reason
    )
    request.app.state.key_cache.clear()  # the old keys' new expiry holds here at once
    now = _runtime(request).clock.now()
    answer = shapes.RotatedMerchantKey(
        merchant_id=found.id,
        merchant=found.name,
        key=new_key_json(issued, now),
        expiring=[key_json(k, now) for k in issued.expiring],
    )
    return JSONResponse(answer, status_code=201)


@router.post(
    "/merchants/{merchant}/keys/{key_id}/revoke",
    summary="Revoke one of a merchant's keys (it stops within seconds everywhere)",
    description=needs("admin"),
    response_model=shapes.ApiKey,
    responses=errors((404, ["merchant_not_found", "key_not_found"]), REVOKE_ERRORS),
)
async def revoke_merchant_key(
    merchant: str, key_id: str, body: RevokeIn, request: Request, who: Admin
) -> JSONResponse:
    runtime = _runtime(request)
    (key,) = await runtime.access.revoke_merchant_keys(merchant, key_id, who.actor, body.reason)
    request.app.state.key_cache.clear()  # this process stops it now; others within the TTL
    return JSONResponse(key_json(key, runtime.clock.now()))
