"""Merchant endpoints: create, read and refund payments."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from typing import Annotated, cast

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse

from paymend.api import auth, shapes
from paymend.api.failures import customer_message_json, failure_json
from paymend.api.idempotent import Render, run_creating, run_once
from paymend.api.responses import errors
from paymend.api.schemas import CompensationIn, Instant, PaymentIn, RefundIn
from paymend.api.views import compensation_json, payment_json, refund_json
from paymend.domain.errors import InvalidInput, NotFound
from paymend.domain.merchant import Merchant
from paymend.domain.money import payment_amount
from paymend.domain.payment import Customer, PaymentStatus
from paymend.engine import compensations, listing
from paymend.engine.commands import PayCommand, RefundCommand
from paymend.engine.events import EventEnvelope, envelope
from paymend.engine.payments import PaymentView
from paymend.engine.runtime import Runtime
from paymend.observability import current_trace_id
from paymend.store.idempotency import Claim, NewKey, Resource
from paymend.store.listing import PaymentQuery
from paymend.store.pii import Field

router = APIRouter(prefix="/v1", tags=["payments"])
Authed = Annotated[Merchant, Depends(auth.merchant)]
IdemKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="1 to 255 characters; the same key with the same body replays the first "
        "response",
        # checked by api/idempotent.py (idempotency_key_invalid), said here for the document
        json_schema_extra={"minLength": 1, "maxLength": 255},
    ),
]


PAYMENT_NOT_FOUND = (404, ["payment_not_found"])


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _render(request: Request, merchant: Merchant, view: PaymentView) -> shapes.Payment:
    """The payment as JSON, what the customer reads (and its failure) in the reader's (or
    the customer's) language."""
    classifier = _runtime(request).service.classifier
    locale = classifier.messages.negotiate(
        request.headers.get("accept-language"), view.payment.customer.locale
    )
    contact = merchant.settings.get("support_contact")
    base_url = str(request.base_url).rstrip("/")
    return payment_json(
        view,
        failure_json(view, classifier, locale=locale, support_contact=contact, base_url=base_url),
        customer_message_json(
            view, classifier, locale=locale, support_contact=contact, base_url=base_url
        ),
    )


@router.post(
    "/payments",
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
        return 201, _stored(_render(request, merchant, view))

    async def creating(key: NewKey) -> tuple[int, dict[str, object], bool]:
        stored: list[dict[str, object]] = []

        def answer(view: PaymentView) -> tuple[int, dict[str, object]]:
            stored.append(_stored(_render(request, merchant, view)))
            return 201, stored[-1]

        view = await runtime.service.pay(replace(command, claim=key, answer=answer))
        if stored:  # pay() returned: the transaction that stored it committed
            return 201, stored[-1], True
        return 201, _stored(_render(request, merchant, view)), False

    return await run_creating(
        runtime,
        merchant.id,
        idempotency_key,
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
    runtime = _runtime(request)

    async def render(resource: Resource) -> dict[str, object]:
        if resource.kind == "payment":
            view = await runtime.service.get(resource.id, merchant.id)
            return _stored(_render(request, merchant, view))
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
    view = await _runtime(request).service.get(payment_id, merchant.id)
    return JSONResponse(_render(request, merchant, view))


Limit = Annotated[int, Query(ge=1, le=100, description="items per page (1-100)")]
StartingAfter = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=64,
        description="the id of the last item of the previous page: this page starts after it",
    ),
]


@router.get(
    "/payments",
    summary="List and search payments, newest first",
    response_model=shapes.PaymentList,
    responses=errors((400, ["customer_search_unavailable"])),
)
async def list_payments(
    request: Request,
    merchant: Authed,
    order_id: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    status: Annotated[
        list[PaymentStatus] | None, Query(description="repeat for several: status=failed&…")
    ] = None,
    created_gte: Annotated[
        Instant | None, Query(description="created at or after (ISO 8601 with a zone)")
    ] = None,
    created_lt: Annotated[Instant | None, Query(description="created before")] = None,
    customer_id: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    customer_email: Annotated[
        str | None, Query(min_length=3, max_length=254, description="matched by its keyed index")
    ] = None,
    customer_phone: Annotated[str | None, Query(min_length=5, max_length=32)] = None,
    channel: Annotated[
        str | None, Query(min_length=1, max_length=64, description="any attempt went to it")
    ] = None,
    failure_code: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    limit: Limit = 20,
    starting_after: StartingAfter = None,
) -> JSONResponse:
    """Every filter given must hold. The answer is one page: `has_more` says whether
    another follows; ask for it with `starting_after` set to the last id of this one."""
    runtime = _runtime(request)
    query = PaymentQuery(
        order_id=order_id,
        statuses=tuple(status or ()),
        created_gte=created_gte,
        created_lt=created_lt,
        customer_id=customer_id,
        customer_email_index=_blind_index(runtime, "email", customer_email),
        customer_phone_index=_blind_index(runtime, "phone", customer_phone),
        channel=channel,
        failure_code=failure_code,
    )
    page = await listing.payments(runtime.store, merchant.id, query, limit, starting_after)
    data = [_render(request, merchant, v) for v in page.items]
    return JSONResponse(
        shapes.PaymentList(
            object="list",
            data=data,
            has_more=page.has_more,
            next_starting_after=_next(data, page.has_more),
        )
    )


def _blind_index(runtime: Runtime, field: Field, value: str | None) -> str | None:
    """Emails and phones are stored sealed; they are found by their keyed index."""
    if value is None:
        return None
    if not runtime.service.pii.enabled:
        raise InvalidInput(
            "customer_search_unavailable",
            f"customer_{field}: contact details are not stored without PAYMEND_DATA_KEY, so "
            "payments cannot be found by them; search by customer_id",
            param=f"customer_{field}",
        )
    found = runtime.service.pii.blind_index(field, value)
    if found is None:
        raise InvalidInput(
            "parameter_invalid",
            f"customer_{field}: not a usable {field}",
            param=f"customer_{field}",
        )
    return found


def _next(data: Sequence[shapes.Payment | EventEnvelope], has_more: bool) -> str | None:
    """Where the next page starts: the last id of this one, if another follows."""
    return data[-1]["id"] if has_more and data else None


def _stored(body: Mapping[str, object]) -> dict[str, object]:
    """A response body as the idempotency store keeps it (a typed dict is a dict)."""
    return cast(dict[str, object], body)


@router.get(
    "/payments/{payment_id}/refunds",
    summary="The refunds of a payment, oldest first",
    response_model=shapes.RefundList,
    responses=errors(PAYMENT_NOT_FOUND),
)
async def list_refunds(payment_id: str, request: Request, merchant: Authed) -> JSONResponse:
    found = await listing.refunds_of(_runtime(request).store, merchant.id, payment_id)
    data = [refund_json(r) for r in found]
    return JSONResponse(
        shapes.RefundList(object="list", data=data, has_more=False, next_starting_after=None)
    )


@router.get(
    "/events",
    tags=["events"],
    summary="Your events, newest first: what webhooks deliver",
    response_model=shapes.EventList,
)
async def list_events(
    request: Request,
    merchant: Authed,
    type: Annotated[
        list[str] | None, Query(max_length=20, description="e.g. payment.failed; repeatable")
    ] = None,
    payment_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    limit: Limit = 20,
    starting_after: StartingAfter = None,
) -> JSONResponse:
    """The events paymend sent (or is sending) to your webhook endpoint, also when you
    have none: a way to catch up after downtime without waiting for redeliveries."""
    page = await listing.events(
        _runtime(request).store,
        merchant.id,
        limit,
        types=tuple(type or ()),
        subject_id=payment_id,
        starting_after=starting_after,
    )
    data = [envelope(e) for e in page.items]
    return JSONResponse(
        shapes.EventList(
            object="list",
            data=data,
            has_more=page.has_more,
            next_starting_after=_next(data, page.has_more),
        )
    )


@router.get(
    "/events/{event_id}",
    tags=["events"],
    summary="One event",
    response_model=EventEnvelope,
    responses=errors((404, ["event_not_found"])),
)
async def get_event(event_id: str, request: Request, merchant: Authed) -> JSONResponse:
    found = await listing.event(_runtime(request).store, merchant.id, event_id)
    if found is None:
        raise NotFound("event_not_found", "no such event", param="event_id")
    return JSONResponse(envelope(found))


@router.post(
    "/payments/{payment_id}/refunds",
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
        return 201, _stored(
            refund_json(await runtime.service.refund(replace(command, claim=claim)))
        )

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
        return 200, _stored(_render(request, merchant, await run(claim)))

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


@router.post(
    "/payments/{payment_id}/confirm",
    summary="Continue after 3-D Secure",
    response_model=shapes.Payment,
    responses=errors(
        PAYMENT_NOT_FOUND, (409, ["payment_not_awaiting_action", "concurrent_update"])
    ),
)
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


@router.post(
    "/payments/{payment_id}/cancel",
    summary="Cancel a payment that is not final",
    response_model=shapes.Payment,
    responses=errors(PAYMENT_NOT_FOUND, (409, ["payment_not_cancelable", "concurrent_update"])),
)
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
    idempotency_key: IdemKey = None,
) -> JSONResponse:
    runtime = _runtime(request)

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
        idempotency_key,
        f"/v1/payments/{payment_id}/compensations",
        body.model_dump(mode="json"),
        handler,
        _resource(request, merchant),
        status=201,
    )
