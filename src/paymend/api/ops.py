"""The ops API: routing controls, held payments, payment look-ups and the audit log, for
operators, each with their own key and role (api/auth.py). The actor of every change is
the operator the key belongs to, never something the body says."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Query, Request
from fastapi.responses import JSONResponse
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
)

from paymend.api import ops_shapes as shapes
from paymend.api.auth import Ops, Support, Viewer
from paymend.api.checked import checked_router
from paymend.api.errors import error_body
from paymend.api.failures import failure_json
from paymend.api.ops_views import control_json
from paymend.api.responses import errors
from paymend.api.schemas import Currency
from paymend.api.shapes import Payment
from paymend.api.views import payment_json
from paymend.domain.errors import ControlExists
from paymend.domain.printable import refused_class, unprintable
from paymend.engine import review
from paymend.engine.controls import LONGEST, PREVIEW_SPAN
from paymend.engine.payments import PaymentView
from paymend.engine.runtime import Runtime
from paymend.store import controls as repo
from paymend.store import payments as payment_repo

# authentication (401), roles (403) and what the guard refuses are documented for every
# route by api/openapi.py; each route names the errors of its own work
router = checked_router(prefix="/v1/ops", tags=["ops"])
PAYMENT_NOT_FOUND = (404, ["payment_not_found"])


def one_line(text: str) -> str:
    """Refuse control characters in a one-line text (pydantic AfterValidator)."""
    bad = unprintable(text)
    if bad is not None:
        raise ValueError(f"holds the control character {bad}")
    return text


# Surrounding white space is stripped (it may hold the tabs and line breaks the guard lets
# through): what remains must be a character or more, none that `unprintable` refuses.
_EDGE = "\\t\\n\\r \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"


def text_pattern(*, multiline: bool = False) -> str:
    """What a stripped, printable text may be, as the document's `pattern`."""
    refused = refused_class(multiline=multiline)
    return f"^[{_EDGE}]*[^{refused}{_EDGE}](?:[^{refused}]*[^{refused}{_EDGE}])?[{_EDGE}]*$"


Text = Annotated[
    str,
    StringConstraints(min_length=1, max_length=500, strip_whitespace=True),
    AfterValidator(one_line),
    Field(json_schema_extra=lambda schema: schema.update(pattern=text_pattern())),
]
ROLE_NOTE = "Needs the **{}** role or above (docs/api.md, the ops API)."


def needs(role: str) -> str:
    return ROLE_NOTE.format(role)


class ControlIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["pause", "force_route", "hold"]
    scope: Literal["channel", "bank", "region"]
    value: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    method: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z_]{1,31}$")] | None = None
    amount_above: Annotated[StrictInt, Field(ge=0, le=10**15)] | None = Field(
        None, description="hold: payments above this many minor units of `currency`"
    )
    currency: Currency | None = Field(
        None, description="hold: the ISO 4217 currency of `amount_above`; only its payments"
    )
    ends_at: AwareDatetime = Field(
        description=f"when it lifts itself: later than now, at most {LONGEST.days} days ahead"
    )
    reason: Text


class EndIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Text


@router.get(
    "/controls",
    summary="Active routing controls",
    description=needs("viewer"),
    response_model=shapes.ControlList,
)
async def list_controls(request: Request, _: Viewer) -> JSONResponse:
    runtime: Runtime = request.app.state.runtime
    now = runtime.clock.now()
    active = await runtime.store.run(lambda conn: repo.active(conn, now))
    return JSONResponse(shapes.ControlList(object="list", data=[control_json(c) for c in active]))


CONTROL_REFUSALS = (
    400,
    [
        "control_invalid",
        "channel_unknown",
        "bank_unknown",
        "region_unknown",
        "method_unknown",
        "currency_unsupported",
    ],
)


@router.post(
    "/controls/preview",
    summary="What a control would do: the payments of the last hour it would have touched",
    description=needs("ops")
    + " Checked as `POST /v1/ops/controls` checks it; nothing is set or written.",
    response_model=shapes.ControlPreview,
    responses=errors(CONTROL_REFUSALS),
)
async def preview_control(body: ControlIn, request: Request, who: Ops) -> JSONResponse:
    runtime: Runtime = request.app.state.runtime
    control, touched = await runtime.service.controls.preview(
        body.kind, body.scope, body.value, body.method, body.reason, runtime.known,
        body.amount_above, body.currency, body.ends_at,
    )  # fmt: skip
    since = control.created_at - PREVIEW_SPAN
    return JSONResponse(
        shapes.ControlPreview(
            object="control_preview",
            control=control_json(control),
            touched=touched,
            since=since.isoformat(),
        )
    )


@router.post(
    "/controls",
    status_code=201,
    summary="Pause a channel, bank or region; force a route; hold large payments",
    description=needs("ops"),
    response_model=shapes.Control,
    responses=errors(CONTROL_REFUSALS, (409, ["control_exists"])),
)
async def add_control(body: ControlIn, request: Request, who: Ops) -> JSONResponse:
    runtime: Runtime = request.app.state.runtime
    try:
        control = await runtime.service.controls.set(
            body.kind, body.scope, body.value, body.method, body.reason, who.actor,
            runtime.known, body.amount_above, body.currency, body.ends_at,
        )  # fmt: skip
    except ControlExists as exists:
        found = exists.existing
        refused = error_body(exists.code, exists.message)
        refused["error"]["control_id"] = found.id if found else None
        return JSONResponse(refused, status_code=exists.status)
    return JSONResponse(control_json(control), status_code=201)


@router.get(
    "/payments/held",
    summary="Payments held for manual review, oldest first",
    description=needs("support"),
    response_model=shapes.HeldPaymentList,
)
async def held_payments(
    request: Request, who: Support, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> JSONResponse:
    runtime: Runtime = request.app.state.runtime
    found = await runtime.store.run(lambda conn: payment_repo.held(conn, limit))
    await runtime.access.note_lookup(who.actor, "payments:held", [p.id for p in found])
    data = [payment_json(PaymentView(p, [], [])) for p in found]
    return JSONResponse(shapes.HeldPaymentList(object="list", data=data))


@router.get(
    "/payments",
    summary="A merchant's payments for one order (customer service looks them up)",
    description=needs("support"),
    response_model=shapes.OpsPaymentList,
)
async def payments_of_order(
    request: Request,
    who: Support,
    merchant_id: Annotated[str, Query(min_length=1, max_length=40)],
    order_id: Annotated[str, Query(min_length=1, max_length=128)],
) -> JSONResponse:
    runtime: Runtime = request.app.state.runtime
    views = await runtime.service.find_by_order(merchant_id, order_id)
    target = f"order:{merchant_id}/{order_id}"
    await runtime.access.note_lookup(who.actor, target, [v.payment.id for v in views])
    data = [_payment(request, v) for v in views]
    return JSONResponse(shapes.OpsPaymentList(object="list", data=data))


@router.get(
    "/payments/{payment_id}",
    summary="Any merchant's payment, with its attempts",
    description=needs("support"),
    response_model=shapes.OpsPayment,
    responses=errors(PAYMENT_NOT_FOUND),
)
async def lookup_payment(payment_id: str, request: Request, who: Support) -> JSONResponse:
    runtime: Runtime = request.app.state.runtime
    view = await runtime.service.get(payment_id)
    await runtime.access.note_lookup(who.actor, f"payment:{payment_id}", [payment_id])
    return JSONResponse(_payment(request, view))


def _payment(request: Request, view: PaymentView) -> shapes.OpsPayment:
    """A payment as its merchant sees it, with whose it is and its failure as the
    customer was told it (in the operator's language when the request names one)."""
    runtime: Runtime = request.app.state.runtime
    classifier = runtime.service.classifier
    locale = classifier.messages.negotiate(
        request.headers.get("accept-language"), view.payment.customer.locale
    )
    failure = failure_json(
        view,
        classifier,
        locale=locale,
        support_contact=None,
        base_url=str(request.base_url).rstrip("/"),
    )
    return {**payment_json(view, failure), "merchant_id": view.payment.merchant_id}


@router.post(
    "/payments/{payment_id}/release",
    summary="Release a held payment: charge it now",
    description=needs("ops"),
    response_model=Payment,
    responses=errors(
        PAYMENT_NOT_FOUND,
        (409, ["payment_not_held", "concurrent_update"]),
        (503, ["payment_method_unavailable"]),
    ),
)
async def release_payment(payment_id: str, body: EndIn, request: Request, who: Ops) -> JSONResponse:
    runtime: Runtime = request.app.state.runtime
    view = await review.release(runtime.service, payment_id, who.actor, body.reason)
    return JSONResponse(payment_json(view))


@router.post(
    "/payments/{payment_id}/reject",
    summary="Reject a held payment without charging",
    description=needs("ops"),
    response_model=Payment,
    responses=errors(PAYMENT_NOT_FOUND, (409, ["payment_not_held", "concurrent_update"])),
)
async def reject_payment(payment_id: str, body: EndIn, request: Request, who: Ops) -> JSONResponse:
    runtime: Runtime = request.app.state.runtime
    view = await review.reject(runtime.service, payment_id, who.actor, body.reason)
    return JSONResponse(payment_json(view))


@router.post(
    "/controls/{control_id}/end",
    summary="Resume: end a control",
    description=needs("ops"),
    response_model=shapes.Control,
    responses=errors((404, ["control_not_found"])),
)
async def end_control(control_id: str, body: EndIn, request: Request, who: Ops) -> JSONResponse:
    runtime: Runtime = request.app.state.runtime
    ended = await runtime.service.controls.end(control_id, body.reason, who.actor)
    return JSONResponse(control_json(ended))


@router.get(
    "/audit",
    summary="The audit log, newest first",
    description=needs("viewer"),
    response_model=shapes.AuditList,
)
async def audit(
    request: Request, _: Viewer, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> JSONResponse:
    runtime: Runtime = request.app.state.runtime
    entries = await runtime.store.run(lambda conn: repo.audit_entries(conn, limit))
    return JSONResponse(shapes.AuditList(object="list", data=entries))
