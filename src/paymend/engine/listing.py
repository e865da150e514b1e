"""Reading lists for the merchant: payments by filter, a payment's refunds, events.

Each list is one page, newest first, read in one transaction; the next page starts after
the last item's id (`starting_after`), as Stripe's lists do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from paymend.domain.errors import InvalidInput
from paymend.domain.payment import Refund
from paymend.engine.payments import REPEAT_WINDOW, PaymentView
from paymend.engine.risk_gate import notes_of
from paymend.store import listing, outbox, refunds
from paymend.store import payments as repo
from paymend.store.database import Connection, Store
from paymend.store.listing import PaymentQuery

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    has_more: bool


def _unknown_cursor(starting_after: str) -> InvalidInput:
    return InvalidInput(
        "parameter_invalid",
        f"starting_after: '{starting_after}' is not an item of this list; pass the id of the "
        "last item of the page before",
        param="starting_after",
    )


async def payments(
    store: Store,
    merchant_id: str,
    query: PaymentQuery,
    limit: int,
    starting_after: str | None = None,
) -> Page[PaymentView]:
    """One page of the merchant's payments matching `query`, each with its attempts and
    refunds (read in bulk) and, when it failed, its customer's recent repeats."""

    def read(conn: Connection) -> Page[PaymentView]:
        after = None
        if starting_after is not None:
            after = listing.cursor_of(conn, merchant_id, starting_after)
            if after is None:
                raise _unknown_cursor(starting_after)
        found = listing.payments_page(conn, merchant_id, query, limit + 1, after)
        page = found[:limit]
        ids = [p.id for p in page]
        tries, backs = listing.attempts_of(conn, ids), listing.refunds_of(conn, ids)
        notes = notes_of(conn, ids)
        views = [
            PaymentView(
                p,
                tries.get(p.id, []),
                backs.get(p.id, []),
                repo.recent_failures(conn, p, REPEAT_WINDOW) if p.failure_code else 0,
                notes.get(p.id),
            )
            for p in page
        ]
        return Page(views, len(found) > limit)

    return await store.run(read)


async def refunds_of(store: Store, merchant_id: str, payment_id: str) -> list[Refund]:
    """Every refund of one of the merchant's payments, oldest first (a payment has few)."""

    def read(conn: Connection) -> list[Refund]:
        payment = repo.get_payment(conn, payment_id, merchant_id)  # 404 if not theirs
        return refunds.for_payment(conn, payment.id)

    return await store.run(read)


async def events(
    store: Store,
    merchant_id: str,
    limit: int,
    *,
    types: tuple[str, ...] = (),
    subject_id: str | None = None,
    starting_after: str | None = None,
) -> Page[outbox.Event]:
    """One page of the merchant's events (what its webhooks carry), newest first."""

    def read(conn: Connection) -> Page[outbox.Event]:
        found = listing.events_page(
            conn,
            merchant_id,
            limit + 1,
            types=types,
            subject_id=subject_id,
            after_event=starting_after,
        )
        if found is None:
            raise _unknown_cursor(starting_after or "")
        return Page(found[:limit], len(found) > limit)

    return await store.run(read)


async def event(store: Store, merchant_id: str, event_id: str) -> outbox.Event | None:
    return await store.run(lambda conn: listing.event(conn, merchant_id, event_id))
