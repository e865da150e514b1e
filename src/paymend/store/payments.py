"""Payments and their attempts. Writes use optimistic locking on `payments.version`."""

from __future__ import annotations

import functools
import hashlib
from collections import namedtuple
from collections.abc import Callable, Collection
from datetime import datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.engine import Connection

from paymend.domain.errors import NotFound, StaleWrite
from paymend.domain.payment import (
    ORDER_PAID,
    Attempt,
    AttemptStatus,
    Payment,
    PaymentStatus,
)
from paymend.store.instances import live_owner_since
from paymend.store.jobs import JobStatus
from paymend.store.payment_rows import (
    attempt_changes,
    attempt_from_row,
    attempt_row,
    payment_changes,
    payment_from_row,
    payment_row,
)
from paymend.store.pii import Vault, customer_columns
from paymend.store.prepared import Prepared
from paymend.store.tables import ORDER_HOLDING, attempts, jobs, payments

ORDER_INDEX = "uq_payments_one_per_order"
T = TypeVar("T")


# Statements are built once and executed with parameter dicts: SQLAlchemy caches their
# compiled form, where `.values(**row)` would rebuild the statement on every call. An
# update sets only the columns that can change after insert (store/payment_rows.py).
# The payment path's writes go straight to the driver's cursor (store/prepared.py).
_INSERT_PAYMENT = Prepared(payments.insert())
_UPDATE_PAYMENT = Prepared(
    payments.update().where(
        payments.c.id == sa.bindparam("b_id"), payments.c.version == sa.bindparam("b_version")
    )
)
_INSERT_ATTEMPT = Prepared(attempts.insert())
_UPDATE_ATTEMPT = Prepared(attempts.update().where(attempts.c.id == sa.bindparam("b_id")))
_LOCK_ORDER = Prepared(sa.select(sa.func.pg_advisory_xact_lock(sa.bindparam("b_lock"))))
# the statuses that hold an order, one bound value each: a plain list would be an
# "expanding" parameter, rendered anew on every execution
_HOLDS = payments.c.status.in_([sa.literal(s) for s in ORDER_HOLDING])
# No ORDER BY: an order has a payment or two, sorted in Python; asked to sort by
# created_at, SQLite walks the merchant's (merchant_id, created_at) index instead of the
# order's, reading every payment the merchant ever had for each new one.
_HOLDING = sa.select(payments).where(
    payments.c.merchant_id == sa.bindparam("b_merchant"),
    payments.c.order_id == sa.bindparam("b_order"),
    _HOLDS,
)
_HOLDING_SPLIT = _HOLDING.where(payments.c.split.is_(False))
# the common case, no holder, asked with one column: a wide row's result set up costs
# more than the query
_ANY_HOLDER = (
    sa.select(payments.c.id)
    .where(
        payments.c.merchant_id == sa.bindparam("b_merchant"),
        payments.c.order_id == sa.bindparam("b_order"),
        _HOLDS,
    )
    .limit(1)
)
_ANY_HOLDING = Prepared(_ANY_HOLDER)
_ANY_HOLDING_SPLIT = Prepared(_ANY_HOLDER.where(payments.c.split.is_(False)))
# a payment and its attempts by id: what a merchant polling a payment, a confirmation
# and the worker settling an attempt read, on the driver's cursor too
_PAYMENT = sa.select(payments).where(payments.c.id == sa.bindparam("b_id"))
_GET_PAYMENT = Prepared(_PAYMENT)
_GET_MERCHANTS_PAYMENT = Prepared(_PAYMENT.where(payments.c.merchant_id == sa.bindparam("b_mid")))
_GET_ATTEMPT = Prepared(sa.select(attempts).where(attempts.c.id == sa.bindparam("b_id")))
_LIST_ATTEMPTS = Prepared(
    sa.select(attempts)
    .where(attempts.c.payment_id == sa.bindparam("b_id"))
    .order_by(attempts.c.seq)
)
# their rows as `payment_from_row` and `attempt_from_row` read them: by column name
_PaymentRow = namedtuple("_PaymentRow", payments.c.keys())  # type: ignore[misc]
_AttemptRow = namedtuple("_AttemptRow", attempts.c.keys())  # type: ignore[misc]


def insert_payment(conn: Connection, p: Payment, now: datetime, vault: Vault | None = None) -> None:
    """Insert a new payment. Its customer's email and phone are sealed under `vault`'s
    key (store/pii.py); without one only their masked forms are stored."""
    p.created_at = p.updated_at = now
    values = payment_row(p)
    values.update(customer_columns(vault, p.id, p.customer))
    values["created_at"] = now
    _INSERT_PAYMENT.write(conn, values)


def update_payment(conn: Connection, p: Payment, now: datetime) -> None:
    """Write `p` if nobody else did since it was read; bump its version. The customer
    columns are written once, at insert: an update never touches them (a payment read
    back holds no clear contact details to write).

    A deferred write (store/prepared.py `deferring`): `p` carries its new version at
    once, and gets the old one back with StaleWrite if the check fails when it runs."""
    values = payment_changes(p)
    values.update(version=p.version + 1, updated_at=now, b_id=p.id, b_version=p.version)
    version, updated_at = p.version, p.updated_at

    def checked(count: int) -> None:
        if count != 1:
            p.version, p.updated_at = version, updated_at
            raise StaleWrite(p.id)

    p.version += 1
    p.updated_at = now
    _UPDATE_PAYMENT.write(conn, values, checked)


def lock_order(conn: Connection, merchant_id: str, order_id: str) -> None:
    """Serialize payment creation for one order until the transaction ends, so the check
    in `holding_order` and the insert after it cannot interleave with another's. SQLite
    needs nothing: its writers already take turns (BEGIN IMMEDIATE)."""
    if conn.dialect.name != "postgresql":
        return
    digest = hashlib.blake2b(f"order\0{merchant_id}\0{order_id}".encode(), digest_size=8)
    _LOCK_ORDER.first(conn, {"b_lock": int.from_bytes(digest.digest(), "big", signed=True)})


def holding_order(
    conn: Connection, merchant_id: str, order_id: str, *, split: bool
) -> Payment | None:
    """A payment that keeps a new one for this order from being created: any payment
    holding the order for an exclusive payment, an exclusive one for a split payment.
    A paid one comes before one in flight."""
    params = {"b_merchant": merchant_id, "b_order": order_id}
    if (_ANY_HOLDING_SPLIT if split else _ANY_HOLDING).first(conn, params) is None:
        return None
    rows = conn.execute(_HOLDING_SPLIT if split else _HOLDING, params)
    found = [payment_from_row(r) for r in sorted(rows, key=lambda r: r.created_at)]
    paid = [p for p in found if p.status in ORDER_PAID]
    return next(iter(paid or found), None)


def is_order_conflict(error: exc.IntegrityError) -> bool:
    """Was this insert refused by the one-payment-per-order index?"""
    text = str(error.orig)
    return ORDER_INDEX in text or "payments.merchant_id, payments.order_id" in text


class OrderIndexRefused(Exception):
    """The one-payment-per-order index refused a payment's insert: another payment for
    the order committed first. Raised by a write wrapped in `guarding_order`."""


def guarding_order(write: Callable[[Connection], T]) -> Callable[[Connection], T]:
    """`write`, with the order index's refusal of its insert raised as OrderIndexRefused
    (the transaction is rolled back as for any error)."""

    def guarded(conn: Connection) -> T:
        try:
            return write(conn)
        except exc.IntegrityError as error:
            if not is_order_conflict(error):
                raise
            raise OrderIndexRefused(str(error.orig)) from error

    return guarded


def get_payment(conn: Connection, payment_id: str, merchant_id: str | None = None) -> Payment:
    if merchant_id is None:
        row = _GET_PAYMENT.first(conn, {"b_id": payment_id})
    else:
        row = _GET_MERCHANTS_PAYMENT.first(conn, {"b_id": payment_id, "b_mid": merchant_id})
    if row is None:
        raise NotFound("payment_not_found", f"no payment '{payment_id}'", param="id")
    return payment_from_row(_PaymentRow._make(row))


def find_by_order(
    conn: Connection, merchant_id: str, order_id: str, limit: int = 100
) -> list[Payment]:
    rows = conn.execute(
        sa.select(payments)
        .where(payments.c.merchant_id == merchant_id, payments.c.order_id == order_id)
        .order_by(payments.c.created_at, payments.c.id)
        .limit(limit)
    )
    return [payment_from_row(r) for r in rows]


def recent_failures(conn: Connection, p: Payment, window: timedelta) -> int:
    """Payments of the same customer that failed for the same cause in the `window`
    before this one: the customer messages escalate instead of repeating themselves.
    The same customer is the same `customer.id`, or the same email or phone, matched by
    their blind indexes (store/pii.py) as stored with this payment: nothing is decrypted.
    """
    c = p.customer
    if p.status is not PaymentStatus.FAILED or p.failure_code is None or p.created_at is None:
        return 0
    known = (c.id is not None, c.email_masked is not None, c.phone_masked is not None)
    if not any(known):
        return 0  # nobody to recognise: spare the query
    values = {
        "merchant_id": p.merchant_id,
        "payment_id": p.id,
        "failure_code": p.failure_code,
        "since": p.created_at - window,
        "until": p.created_at,
    }
    counted: int = conn.execute(_repeats_query(known), values).scalar_one()
    return counted


@functools.cache
def _repeats_query(known: tuple[bool, bool, bool]) -> sa.Select[Any]:
    """The count of recent_failures for the identities a payment has (customer id, email,
    phone): one UNION branch each, on its own index, built once (SQLite's planner left to
    itself ORs the three, and building the statement anew cost more than running it:
    together ~6 ms a payment, 300 ms for a page of 50 failed ones)."""
    me = payments.alias("me")
    columns = ("customer_id", "customer_email_index", "customer_phone_index")
    branches = []
    for col, present in zip(columns, known, strict=True):
        if not present:
            continue
        same = sa.select(me.c[col]).where(me.c.id == sa.bindparam("payment_id"))
        branch = sa.select(payments.c.id).where(
            payments.c.merchant_id == sa.bindparam("merchant_id"),
            payments.c[col] == same.scalar_subquery(),
            payments.c.status == PaymentStatus.FAILED.value,
            payments.c.failure_code == sa.bindparam("failure_code"),
            payments.c.id != sa.bindparam("payment_id"),
            payments.c.created_at >= sa.bindparam("since", type_=payments.c.created_at.type),
            payments.c.created_at <= sa.bindparam("until", type_=payments.c.created_at.type),
        )
        index = f"ix_payments_merchant_id_{col}_created_at"
        branches.append(branch.with_hint(payments, f"INDEXED BY {index}", "sqlite"))
    found = sa.union(*branches).subquery()
    return sa.select(sa.func.count()).select_from(found)


def card_tries_since(
    conn: Connection, token: str, since: datetime, *, excluding: str | None = None
) -> int:
    """Declined or failed provider calls with this card (payment token) since `since`,
    on payments other than `excluding`: what the card networks count against their
    reattempt limits."""
    return int(
        conn.execute(
            sa.select(sa.func.count())
            .select_from(attempts.join(payments, payments.c.id == attempts.c.payment_id))
            .where(
                payments.c.payment_token == token,
                payments.c.id != (excluding or ""),
                attempts.c.status == AttemptStatus.FAILED.value,
                attempts.c.created_at >= since,
            )
        ).scalar_one()
    )


def insert_attempt(conn: Connection, a: Attempt, owner: str | None = None) -> None:
    """Insert a pending attempt; `owner` is the instance about to call the provider."""
    values = attempt_row(a)
    values["owner"] = owner
    _INSERT_ATTEMPT.write(conn, values)


def update_attempt(conn: Connection, a: Attempt) -> None:
    """Write what a call told of `a` (store/payment_rows.py: its outcome); its payment,
    channel, key, request and creation time are fixed at insert, and indexed."""
    values = attempt_changes(a)
    values["b_id"] = a.id
    _UPDATE_ATTEMPT.write(conn, values)


def get_attempt(conn: Connection, attempt_id: str) -> Attempt | None:
    row = _GET_ATTEMPT.first(conn, {"b_id": attempt_id})
    return attempt_from_row(_AttemptRow._make(row)) if row else None


def attempt_with_payment(
    conn: Connection, attempt_id: str
) -> tuple[Payment, list[Attempt], Attempt] | None:
    """An attempt with its payment and all the payment's attempts; None if unknown."""
    attempt = get_attempt(conn, attempt_id)
    if attempt is None:
        return None
    attempts = list_attempts(conn, attempt.payment_id)
    return get_payment(conn, attempt.payment_id), attempts, attempt


def orphaned_attempts(
    conn: Connection,
    older_than: datetime,
    limit: int = 100,
    *,
    now: datetime | None = None,
    dead_after: timedelta | None = None,
    skip: Collection[str] = (),
) -> list[Attempt]:
    """Attempts left pending (a crash between the call and its record) with no job that
    will run them: the worker asks the provider what became of them. Orphaned are those
    whose owner instance is dead (given `now` and `dead_after`), and any created before
    `older_than` (rows with no owner, or an owner stuck for that long). `skip`: attempts
    this process is settling already."""
    params: dict[str, Any] = {"b_older_than": older_than, "b_limit": limit}
    if now is not None and dead_after is not None:
        params["b_alive_since"] = now - dead_after
    if skip:
        params["b_skip"] = list(skip)
    rows = conn.execute(_orphaned("b_alive_since" in params, bool(skip)), params)
    return [attempt_from_row(r) for r in rows]


@functools.cache
def _orphaned(owners: bool, skipping: bool) -> sa.Select[Any]:
    """The orphan scan's query, built once for each shape (the worker scans every
    sweep): `owners`, attempts of dead owners too; `skipping`, not those in `b_skip`."""
    at = attempts.c.created_at.type
    waiting = sa.select(jobs.c.id).where(
        jobs.c.subject_id == attempts.c.id, jobs.c.status == JobStatus.PENDING.value
    )
    orphaned: sa.ColumnElement[bool] = attempts.c.created_at <= sa.bindparam(
        "b_older_than", type_=at
    )
    if owners:
        alive = live_owner_since(attempts.c.owner, sa.bindparam("b_alive_since", type_=at))
        orphaned = sa.or_(orphaned, sa.and_(attempts.c.owner.is_not(None), ~alive))
    query = sa.select(attempts).where(
        attempts.c.status == AttemptStatus.PENDING.value, orphaned, ~sa.exists(waiting)
    )
    if skipping:
        query = query.where(attempts.c.id.not_in(sa.bindparam("b_skip", expanding=True)))
    return query.order_by(attempts.c.created_at).limit(sa.bindparam("b_limit", type_=sa.Integer))


def list_attempts(conn: Connection, payment_id: str) -> list[Attempt]:
    make = _AttemptRow._make
    return [attempt_from_row(make(r)) for r in _LIST_ATTEMPTS.all(conn, {"b_id": payment_id})]


def held(conn: Connection, limit: int = 100) -> list[Payment]:
    """Payments waiting for manual review, oldest first (the review queue)."""
    rows = conn.execute(
        sa.select(payments)
        .where(payments.c.status == PaymentStatus.HELD.value)
        .order_by(payments.c.created_at)
        .limit(limit)
    )
    return [payment_from_row(r) for r in rows]
