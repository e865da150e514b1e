"""Merchant endpoints that act on payments: create, read, refund, confirm, cancel and
compensate (the lists and searches are api/listing.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import cast

from fastapi import Request
from fastapi.responses import JSONResponse

from paymend.api import shapes
from paymend.api.checked import checked_router
from paymend.api.idempotent import Render, idempotent, key_of, run_creating, run_once
from paymend.api.rendering import PAYMENT_NOT_FOUND, Authed, render_payment, runtime_of
from paymend.api.responses import errors
from paymend.api.schemas import CompensationIn, ConfirmIn, PaymentIn, RefundIn
from paymend.api.views import compensation_json, refund_json
from paymend.domain.errors import InvalidInput
from paymend.domain.merchant import Merchant
from paymend.domain.money import payment_amount
from paymend.domain.payment import Customer
from paymend.engine import compensations
from paymend.engine.commands import Answer, PayCommand, RefundCommand
from paymend.engine.payments import PaymentView
from paymend.observability.tracing import current_trace_id
from paymend.store.idempotency import Claim, Encoded, NewKey, Resource

router = checked_router(prefix="/v1", tags=["payments"])


@router.post(
    "/payments",
    openapi_extra=idempotent(),
    status_code=201,
    summary="Create and authorize a payment",
    response_model=shapes.Payment,
    responses=errors(
        (
            400,
            [
                "amount_invalid",
                "amount_too_small",
                "amount_too_large",
                "currency_unsupported",
                "payment_method_unsupported",
                "payment_method_unavailable",
            ],
        ),
        (409, ["order_already_paid", "order_payment_in_progress"]),
        (503, ["payment_method_paused", "payment_in_flight"]),
    ),
)
async def create_payment(body: PaymentIn, request: Request, merchant: Authed) -> JSONResponse:
    """Validates, routes and authorizes the payment, and answers with its status:
    `succeeded`, `failed` (with the reason), `requires_action`, or `processing` when the
    outcome is not yet known (the worker finishes it)."""
    runtime = runtime_of(request)
    amount = payment_amount(body.amount, body.currency)
    if body.method not in runtime.service.methods():
        raise InvalidInput(
            "payment_method_unsupported",
            f"'{body.method}' is not a payment method of any configured channel "
            f"(have: {', '.join(sorted(runtime.service.methods()))})",
            param="method",
        )
    c = body.customer
    customer = Customer(c.id, c.locale, c.phone, c.email) if c else Customer()
    trace_id = current_trace_id()

    def command(claim: Claim | NewKey | None, answer: Answer | None = None) -> PayCommand:
        # built with its key, once: a copy by `replace` to add the key cost 2.5 µs
        return PayCommand(
            merchant_id=merchant.id,
            order_id=body.order_id,
            amount=amount,
            method=body.method,
            bank=body.bank,
            region=body.region,
            token=body.payment_token,
            customer=customer,
            metadata=body.metadata or {},
            trace_id=trace_id,
            deadline_s=merchant.settings.get("checkout_deadline_s"),
            split=body.split_payment,
            claim=claim,
            answer=answer,
        )

    async def handler(claim: Claim | None) -> tuple[int, dict[str, object]]:
        view = await runtime.service.pay(command(claim))
        return 201, _stored(render_payment(request, merchant, view))

    async def creating(key: NewKey) -> tuple[int, dict[str, object], bool]:
        stored: list[dict[str, object]] = []

        def answer(view: PaymentView) -> tuple[int, dict[str, object]]:
            # encoded once: the stored answer and the response are the same text
            stored.append(Encoded(_stored(render_payment(request, merchant, view))))
            return 201, stored[-1]

        view = await runtime.service.pay(command(key, answer))
        if stored:  # pay() returned: the transaction that stored it committed
            return 201, stored[-1], True
        return 201, _stored(render_payment(request, merchant, view)), False

    return await run_creating(
        runtime,
        merchant.id,
        key_of(request),
        "/v1/payments",
        idempotency_body(body),
        creating,
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
    runtime = runtime_of(request)

    async def render(resource: Resource) -> dict[str, object]:
        if resource.kind == "payment":
            view = await runtime.service.get(resource.id, merchant.id)
            return _stored(render_payment(request, merchant, view))
        if resource.kind == "refund":
            return _stored(refund_json(await runtime.service.refunds.get(resource.id, merchant.id)))
        found = await compensations.get(runtime.service, resource.id, merchant.id)
        return _stored(compensation_json(found))

    return render


@router.get(
    "/payments/{payment_id}",
    summary="A payment with its attempt timeline",
    response_model=shapes.Payment,
    responses=errors(PAYMENT_NOT_FOUND),
)
async def get_payment(payment_id: str, request: Request, merchant: Authed) -> JSONResponse:
    view = await runtime_of(request).service.get(payment_id, merchant.id)
    return JSONResponse(render_payment(request, merchant, view))


def _stored(body: Mapping[str, object]) -> dict[str, object]:
    """A response body as the idempotency store keeps it (a typed dict is a dict)."""
    return cast(dict[str, object], body)


@router.post(
    "/payments/{payment_id}/refunds",
    openapi_extra=idempotent(),
    status_code=201,
    summary="Refund all or part of a payment",
    response_model=shapes.Refund,
    responses=errors(
        (400, ["amount_invalid", "amount_too_small", "refund_exceeds_captured"]),
        PAYMENT_NOT_FOUND,
        (409, ["payment_not_refundable", "refund_in_progress", "concurrent_update"]),
    ),
)
async def create_refund(
    payment_id: str,
    body: RefundIn,
    request: Request,
    merchant: Authed,
) -> JSONResponse:
    runtime = runtime_of(request)
    command = RefundCommand(
        merchant_id=merchant.id,
        payment_id=payment_id,
        amount=body.amount,
        reason=body.reason,
        trace_id=current_trace_id(),
    )

    async def handler(claim: Claim | None) -> tuple[int, dict[str, object]]:
        return 201, _stored(
            refund_json(await runtime.service.refund(replace(command, claim=claim)))
        )

    return await run_once(
        runtime,
        merchant.id,
        key_of(request),
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
    run: Callable[[Claim | None], Awaitable[PaymentView]],
    body: Mapping[str, object] | None = None,
) -> JSONResponse:
    async def handler(claim: Claim | None) -> tuple[int, dict[str, object]]:
        return 200, _stored(render_payment(request, merchant, await run(claim)))

    path = f"/v1/payments/{payment_id}/{action}"
    return await run_once(
        runtime_of(request),
        merchant.id,
        key_of(request),
        path,
        dict(body or {}),
        handler,
        _resource(request, merchant),
        status=200,
    )


@router.post(
    "/payments/{payment_id}/confirm",
    openapi_extra=idempotent(),
    summary="Continue after 3-D Secure",
    response_model=shapes.Payment,
    responses=errors(
        PAYMENT_NOT_FOUND, (409, ["payment_not_awaiting_action", "concurrent_update"])
    ),
)
async def confirm_payment(
    payment_id: str,
    request: Request,
    merchant: Authed,
    body: ConfirmIn | None = None,
) -> JSONResponse:
    """Call this when the customer came back from the bank's authentication page. With
    an Adyen channel, pass what their return brought in `details` (`redirectResult` from
    your returnUrl's query, or the 3-D Secure component's `threeDSResult`)."""
    service = runtime_of(request).service
    given = body.details.model_dump(exclude_none=True) if body and body.details else {}
    return await _act(
        request,
        merchant,
        payment_id,
        "confirm",
        lambda claim: service.confirm(merchant.id, payment_id, claim, given),
        {"details": given} if given else None,
    )


@router.post(
    "/payments/{payment_id}/cancel",
    openapi_extra=idempotent(),
    summary="Cancel a payment that is not final",
    response_model=shapes.Payment,
    responses=errors(PAYMENT_NOT_FOUND, (409, ["payment_not_cancelable", "concurrent_update"])),
)
async def cancel_payment(payment_id: str, request: Request, merchant: Authed) -> JSONResponse:
    """A charge that still lands after the cancel is refunded automatically."""
    service = runtime_of(request).service
    return await _act(
        request,
        merchant,
        payment_id,
        "cancel",
        lambda claim: service.cancel(merchant.id, payment_id, claim),
    )


@router.post(
    "/payments/{payment_id}/compensations",
    openapi_extra=idempotent(),
    status_code=201,
    summary="Grant a coupon or credit for a failed or delayed payment",
    response_model=shapes.Compensation,
    responses=errors(
        (
            400,
            [
                "amount_invalid",
                "amount_too_small",
                "amount_too_large",
                "compensation_exceeds_cap",
            ],
        ),
        PAYMENT_NOT_FOUND,
        (409, ["compensation_not_applicable"]),
    ),
)
async def create_compensation(
    payment_id: str,
    body: CompensationIn,
    request: Request,
    merchant: Authed,
) -> JSONResponse:
    runtime = runtime_of(request)

    async def handler(claim: Claim | None) -> tuple[int, dict[str, object]]:
        comp = await compensations.grant(
            runtime.service,
            merchant,
            payment_id,
            compensations.CompensationKind(body.kind),
            body.amount,
            body.reason,
            body.granted_by,
            claim,
        )
        return 201, _stored(compensation_json(comp))

    return await run_once(
        runtime,
        merchant.id,
        key_of(request),
        f"/v1/payments/{payment_id}/compensations",
        body.model_dump(mode="json"),
        handler,
        _resource(request, merchant),
        status=201,
    )
