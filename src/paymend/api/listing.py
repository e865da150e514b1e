"""Merchant endpoints that list and search: payments (by order, status, time, customer,
channel, failure), a payment's refunds, and the events webhooks deliver."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import Query, Request
from fastapi.responses import JSONResponse

from paymend.api import shapes
from paymend.api.checked import checked_router
from paymend.api.rendering import PAYMENT_NOT_FOUND, Authed, render_payment, runtime_of
from paymend.api.responses import errors
from paymend.api.schemas import Instant
from paymend.api.views import refund_json
from paymend.domain.errors import InvalidInput, NotFound
from paymend.domain.payment import PaymentStatus
from paymend.engine import listing
from paymend.engine.events import EventEnvelope, envelope
from paymend.engine.runtime import Runtime
from paymend.store.listing import PaymentQuery
from paymend.store.pii import Field

router = checked_router(prefix="/v1", tags=["payments"])
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
    runtime = runtime_of(request)
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
    data = [render_payment(request, merchant, v) for v in page.items]
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


@router.get(
    "/payments/{payment_id}/refunds",
    summary="The refunds of a payment, oldest first",
    response_model=shapes.RefundList,
    responses=errors(PAYMENT_NOT_FOUND),
)
async def list_refunds(payment_id: str, request: Request, merchant: Authed) -> JSONResponse:
    found = await listing.refunds_of(runtime_of(request).store, merchant.id, payment_id)
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
        runtime_of(request).store,
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
    found = await listing.event(runtime_of(request).store, merchant.id, event_id)
    if found is None:
        raise NotFound("event_not_found", "no such event", param="event_id")
    return JSONResponse(envelope(found))
