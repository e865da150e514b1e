"""Risk control over HTTP: a payment's decision and fraud reports (the shop's key), the
allow and block lists (operators' keys, audit-logged). docs/risk.md."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from paymend.api import risk_shapes as shapes
from paymend.api.auth import Ops, Support, Viewer
from paymend.api.checked import checked_router
from paymend.api.ops import EndIn, Text, needs
from paymend.api.rendering import PAYMENT_NOT_FOUND, Authed, runtime_of
from paymend.api.responses import errors
from paymend.api.schemas import Instant
from paymend.engine import risk_ops

router = checked_router(prefix="/v1", tags=["risk"])
DECISION_NOT_FOUND = (404, ["payment_not_found", "risk_decision_not_found"])


class FraudReportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["chargeback", "fraud"]
    reason: Text


# one word or phrase without surrounding white space (what the list is matched on)
_VALUE = r"^\S(?:.*\S)?$"
_MAILBOX = r"[^@\s\x00-\x1f\x7f-\x9f]"  # as a payment's customer email (api/schemas.py)
EMAIL_PATTERN = rf"^{_MAILBOX}+@{_MAILBOX}+\.{_MAILBOX}+$"


class _EntryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["allow", "block"]
    reason: Text


class KeyEntryIn(_EntryIn):
    kind: Literal["card", "device", "ip"]
    value: Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=_VALUE)]


class EmailEntryIn(_EntryIn):
    kind: Literal["email"]
    value: Annotated[str, StringConstraints(max_length=128, pattern=EMAIL_PATTERN)]


ListEntryIn = Annotated[KeyEntryIn | EmailEntryIn, Field(discriminator="kind")]


def _at(value: Any) -> str:
    return str(value.isoformat()).replace("+00:00", "Z")


def decision_json(row: dict[str, Any]) -> shapes.RiskDecision:
    return {
        "object": "risk_decision",
        "payment_id": row["payment_id"],
        "verdict": row["verdict"],
        "rules_version": row["rules_version"],
        "score": row["score"],
        "rules": row["fired"],
        "shadow_verdict": row["shadow_verdict"],
        "features": row["features"],
        "created_at": _at(row["created_at"]),
    }


def entry_json(row: dict[str, Any]) -> shapes.ListEntry:
    return {
        "id": row["id"],
        "object": "risk_list_entry",
        "kind": row["kind"],
        "value": row["shown"],
        "action": row["action"],
        "reason": row["reason"],
        "created_by": row["created_by"],
        "created_at": _at(row["created_at"]),
    }


@router.get(
    "/payments/{payment_id}/risk",
    summary="The payment's risk decision: verdict, rules fired, score, features",
    response_model=shapes.RiskDecision,
    responses=errors(DECISION_NOT_FOUND),
)
async def payment_risk(payment_id: str, request: Request, merchant: Authed) -> JSONResponse:
    found = await risk_ops.decision(runtime_of(request).service, payment_id, merchant.id)
    return JSONResponse(decision_json(found))


@router.post(
    "/payments/{payment_id}/fraud-report",
    status_code=201,
    summary="Report a chargeback or confirmed fraud on a payment",
    description="Lowers the customer's and the card's behaviour scores; `fraud` also puts "
    "the payment's card, device and email on the block lists. Once per payment and kind.",
    response_model=shapes.FraudReport,
    responses=errors(PAYMENT_NOT_FOUND),
)
async def fraud_report(
    payment_id: str, body: FraudReportIn, request: Request, merchant: Authed
) -> JSONResponse:
    done = await risk_ops.report(
        runtime_of(request).service, payment_id, merchant.id, body.kind, body.reason
    )
    answer: shapes.FraudReport = {
        "object": "fraud_report",
        "payment_id": done.payment_id,
        "kind": body.kind,
        "new": done.new,
        "blocked": done.blocked,
    }
    return JSONResponse(answer, status_code=201 if done.new else 200)


@router.get(
    "/ops/payments/{payment_id}/risk",
    tags=["ops"],
    summary="A payment's risk decision",
    description=needs("support"),
    response_model=shapes.RiskDecision,
    responses=errors(DECISION_NOT_FOUND),
)
async def ops_payment_risk(payment_id: str, request: Request, _: Support) -> JSONResponse:
    found = await risk_ops.decision(runtime_of(request).service, payment_id)
    return JSONResponse(decision_json(found))


@router.get(
    "/ops/risk/shadow",
    tags=["ops"],
    summary="What the shadow rules would have decided, beside what was enforced",
    description=needs("viewer"),
    response_model=shapes.ShadowCounts,
)
async def shadow_counts(
    request: Request, _: Viewer, since: Annotated[Instant | None, Query()] = None
) -> JSONResponse:
    rows = await risk_ops.shadow(runtime_of(request).service, since)
    data = [
        {
            "rules_version": r["rules_version"],
            "verdict": r["verdict"],
            "shadow_verdict": r["shadow_verdict"],
            "count": r["n"],
        }
        for r in rows
    ]
    return JSONResponse({"object": "list", "data": data})


@router.get(
    "/ops/risk/lists",
    tags=["ops"],
    summary="The allow and block lists",
    description=needs("viewer"),
    response_model=shapes.ListEntries,
)
async def list_entries(
    request: Request,
    _: Viewer,
    kind: Annotated[Literal["card", "email", "device", "ip"] | None, Query()] = None,
) -> JSONResponse:
    rows = await risk_ops.entries(runtime_of(request).service, kind)
    return JSONResponse({"object": "list", "data": [entry_json(r) for r in rows]})


@router.post(
    "/ops/risk/lists",
    status_code=201,
    tags=["ops"],
    summary="Allow or block a card fingerprint, email, device or IP",
    description=needs("ops") + " Replaces the entry for the same kind and value.",
    response_model=shapes.ListEntry,
    responses=errors((400, ["risk_list_value_invalid"])),
)
async def add_list_entry(body: ListEntryIn, request: Request, who: Ops) -> JSONResponse:
    added = await risk_ops.add_entry(
        runtime_of(request).service,
        body.kind,
        body.value,
        body.action,
        body.reason,
        who.actor,
    )
    return JSONResponse(entry_json(added), status_code=201)


@router.post(
    "/ops/risk/lists/{entry_id}/remove",
    tags=["ops"],
    summary="Take an entry off its list",
    description=needs("ops"),
    response_model=shapes.ListEntry,
    responses=errors((404, ["risk_list_entry_not_found"])),
)
async def remove_list_entry(entry_id: int, body: EndIn, request: Request, who: Ops) -> JSONResponse:
    gone = await risk_ops.remove_entry(
        runtime_of(request).service, entry_id, body.reason, who.actor
    )
    return JSONResponse(entry_json(gone))
