"""Merchant endpoints: create, read and refund payments."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse

from paymend.api import auth
from paymend.api.failures import failure_json
from paymend.api.idempotent import Render, run_once
from paymend.api.schemas import CompensationIn, PaymentIn, RefundIn
from paymend.api.views import compensation_json, payment_json, refund_json
from paymend.domain.errors import InvalidInput
from paymend.domain.money import payment_amount
from paymend.domain.payment import Customer
from paymend.engine import compensations
from paymend.engine.commands import PayCommand, RefundCommand
from paymend.engine.payments import PaymentView
from paymend.engine.runtime import Runtime
from paymend.observability import current_trace_id
from paymend.store.idempotency import Claim, Resource
from paymend.store.merchants import Merchant

router = APIRouter(prefix="/v1", tags=["payments"])
Authed = Annotated[Merchant, Depends(auth.merchant)]
IdemKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="the same key with the same body replays the first response",
    ),
]


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _render(request: Request, merchant: Merchant, view: PaymentView) -> dict[str, object]:
    """The payment as JSON, its failure told in the reader's (or the customer's) language."""
    classifier = _runtime(request).service.classifier
    locale = classifier.messages.negotiate(
        request.headers.get("accept-language"), view.payment.customer.locale
    )
    failure = failure_json(
        view,
        classifier,
        locale=locale,
        support_contact=merchant.settings.get("support_contact"),
        base_url=str(request.base_url).rstrip("/"),
    )
    return payment_json(view, failure)


@router.post("/payments", status_code=201, summary="Create and authorize a payment")
async def create_payment(
    body: PaymentIn, request: Request, merchant: Authed, idempotency_key: IdemKey = None
) -> JSONResponse:
    """Validates, routes and authorizes the payment, and answers with its status:
    `succeeded`, `failed` (with the reason), `requires_action`, or `processing` when the
    outcome is not yet known (the worker finishes it)."""
    runtime = _runtime(request)
    amount = payment_amount(body.amount, body.currency)
    if body.method not in runtime.service.methods():
        raise InvalidInput(
            "payment_method_unsupported",
            f"'{body.method}' is not a payment method of any configured channel "
            f"(have: {', '.join(sorted(runtime.service.methods()))})",
            param="method",
        )
    c = body.customer
    command = PayCommand(
        merchant_id=merchant.id,
        order_id=body.order_id,
        amount=amount,
        method=body.method,
        bank=body.bank,
        region=body.region,
        token=body.payment_token,
        customer=Customer(c.id, c.locale, c.phone, c.email) if c else Customer(),
        metadata=body.metadata or {},
        trace_id=current_trace_id(),
        deadline_s=merchant.settings.get("checkout_deadline_s"),
        split=body.split_payment,
    )

    async def handler(claim: Claim | None) -> tuple[int, dict[str, object]]:
        view = await runtime.service.pay(replace(command, claim=claim))
        return 201, _render(request, merchant, view)

    return await run_once(
        runtime,
        merchant.id,
        idempotency_key,
        "/v1/payments",
        idempotency_body(body),
        handler,
        _resource(request, merchant),
        status=201,
    )


def idempotency_body(body: PaymentIn) -> dict[str, object]:
    """The body as the idempotency hash sees it. A default `split_payment` is left out,
    so keys stored before the field existed still match their request."""
    dumped = body.model_dump(mode="json")
    if not body.split_payment:
        del dumped["split_payment"]
    return dumped


def _resource(request: Request, merchant: Merchant) -> Render:
    """How a key whose request died answers: with what it created, as it is now."""
    runtime = _runtime(request)

    async def render(resource: Resource) -> dict[str, object]:
        if resource.kind == "payment":
            return _render(request, merchant, await runtime.service.get(resource.id, merchant.id))
        if resource.kind == "refund":
            return refund_json(await runtime.service.refunds.get(resource.id, merchant.id))
        return compensation_json(await compensations.get(runtime.service, resource.id, merchant.id))

    return render


@router.get("/payments/{payment_id}", summary="A payment with its attempt timeline")
async def get_payment(payment_id: str, request: Request, merchant: Authed) -> JSONResponse:
    view = await _runtime(request).service.get(payment_id, merchant.id)
    return JSONResponse(_render(request, merchant, view))


@router.get("/payments", summary="Payments of an order")
async def list_payments(
    request: Request,
    merchant: Authed,
    order_id: Annotated[str, Query(min_length=1, max_length=128)],
) -> JSONResponse:
    views = await _runtime(request).service.find_by_order(merchant.id, order_id)
    return JSONResponse({"object": "list", "data": [_render(request, merchant, v) for v in views]})


@router.post(
    "/payments/{payment_id}/refunds", status_code=201, summary="Refund all or part of a payment"
)
async def create_refund(
    payment_id: str,
    body: RefundIn,
    request: Request,
    merchant: Authed,
    idempotency_key: IdemKey = None,
) -> JSONResponse:
    runtime = _runtime(request)
    command = RefundCommand(
        merchant_id=merchant.id,
        payment_id=payment_id,
        amount=body.amount,
        reason=body.reason,
        trace_id=current_trace_id(),
    )

    async def handler(claim: Claim | None) -> tuple[int, dict[str, object]]:
        return 201, refund_json(await runtime.service.refund(replace(command, claim=claim)))

    return await run_once(
        runtime,
        merchant.id,
        idempotency_key,
        f"/v1/payments/{payment_id}/refunds",
        body.model_dump(mode="json"),
        handler,
        _resource(request, merchant),
        status=201,
    )


async def _act(
    request: Request,
    merchant: Merchant,
    payment_id: str,
    action: str,
    idempotency_key: str | None,
    run: Callable[[Claim | None], Awaitable[PaymentView]],
) -> JSONResponse:
    async def handler(claim: Claim | None) -> tuple[int, dict[str, object]]:
        return 200, _render(request, merchant, await run(claim))

    path = f"/v1/payments/{payment_id}/{action}"
    return await run_once(
        _runtime(request),
        merchant.id,
        idempotency_key,
        path,
        {},
        handler,
        _resource(request, merchant),
        status=200,
    )


@router.post("/payments/{payment_id}/confirm", summary="Continue after 3-D Secure")
async def confirm_payment(
    payment_id: str, request: Request, merchant: Authed, idempotency_key: IdemKey = None
) -> JSONResponse:
    """Call this when the customer came back from the bank's authentication page."""
    service = _runtime(request).service
    return await _act(
        request,
        merchant,
        payment_id,
        "confirm",
        idempotency_key,
        lambda claim: service.confirm(merchant.id, payment_id, claim),
    )


@router.post("/payments/{payment_id}/cancel", summary="Cancel a payment that is not final")
async def cancel_payment(
    payment_id: str, request: Request, merchant: Authed, idempotency_key: IdemKey = None
) -> JSONResponse:
    """A charge that still lands after the cancel is refunded automatically."""
    service = _runtime(request).service
    return await _act(
        request,
        merchant,
        payment_id,
        "cancel",
        idempotency_key,
        lambda claim: service.cancel(merchant.id, payment_id, claim),
    )


@router.post(
    "/payments/{payment_id}/compensations",
    status_code=201,
    summary="Grant a coupon or credit for a failed or delayed payment",
)
async def create_compensation(
    payment_id: str,
    body: CompensationIn,
    request: Request,
    merchant: Authed,
    idempotency_key: IdemKey = None,
) -> JSONResponse:
    runtime = _runtime(request)

    async def handler(claim: Claim | None) -> tuple[int, dict[str, object]]:
        comp = await compensations.grant(
            runtime.service,
            merchant.id,
            payment_id,
            compensations.CompensationKind(body.kind),
            body.amount,
            body.reason,
            body.granted_by,
            claim,
        )
        return 201, compensation_json(comp)

    return await run_once(
        runtime,
        merchant.id,
        idempotency_key,
        f"/v1/payments/{payment_id}/compensations",
        body.model_dump(mode="json"),
        handler,
        _resource(request, merchant),
        status=201,
    )
