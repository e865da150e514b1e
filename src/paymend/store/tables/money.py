"""Money and what it owes: payments, their attempts and refunds, compensations, the
outbox of events, idempotency keys."""

from __future__ import annotations

import sqlalchemy as sa

from paymend.domain.payment import ORDER_IN_FLIGHT, ORDER_PAID
from paymend.store.tables.columns import JSON, Id, UTCDateTime, metadata, one_of

# a payment in one of these statuses holds its order (domain/payment.py)
ORDER_HOLDING = tuple(sorted(s.value for s in ORDER_IN_FLIGHT | ORDER_PAID))
_HOLDING_SQL = ", ".join(f"'{s}'" for s in ORDER_HOLDING)


def _sparse_index(*columns: str) -> sa.Index:
    """An index of the rows whose one nullable column among `columns` is set: the
    searches it serves always name a value, and the rows without one (most of them)
    cost no index entry to write."""
    (sparse,) = (c for c in columns if c not in ("merchant_id", "created_at", "id"))
    present = sa.text(f"{sparse} IS NOT NULL")
    return sa.Index(None, *columns, sqlite_where=present, postgresql_where=present)


payments = sa.Table(
    "payments",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("merchant_id", Id, sa.ForeignKey("merchants.id"), nullable=False),
    sa.Column("order_id", sa.String(128), nullable=False),
    sa.Column("amount", sa.BigInteger(), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("method", sa.String(32), nullable=False),
    sa.Column("bank", sa.String(64)),
    sa.Column("region", sa.String(64)),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("amount_refunded", sa.BigInteger(), nullable=False),
    sa.Column("amount_refund_pending", sa.BigInteger(), nullable=False),
    # id, locale and the masked email and phone (store/pii.py); never their clear text
    sa.Column("customer", JSON, nullable=False),
    sa.Column("customer_id", sa.String(128)),
    # AES-256-GCM under the data key, with its key id; NULL without a key
    sa.Column("customer_email_sealed", sa.Text()),
    sa.Column("customer_phone_sealed", sa.Text()),
    # HMAC-SHA256 blind indexes of the normalised email and phone: match without decrypting
    sa.Column("customer_email_index", sa.String(64)),
    sa.Column("customer_phone_index", sa.String(64)),
    sa.Column("metadata", JSON, nullable=False),
    sa.Column("payment_token", sa.String(255)),
    sa.Column("failure_code", sa.String(64)),
    sa.Column("failure_message", sa.String(500)),
    sa.Column("trace_id", sa.String(32)),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    # one of several payments the merchant asked for on one order (split payment): it
    # takes no part in the order's one-payment rule below
    sa.Column("split", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Index(None, "merchant_id", "order_id"),
    # one order, at most one exclusive payment in flight or paid: the database itself
    # refuses a second one, whatever the code does
    sa.Index(
        "uq_payments_one_per_order",
        "merchant_id",
        "order_id",
        unique=True,
        # SQLite: comparisons, checked for every row written (`one_of`, migration 0028)
        sqlite_where=sa.text(f"NOT split AND ({one_of('status', ORDER_HOLDING)})"),
        postgresql_where=sa.text(f"NOT split AND status IN ({_HOLDING_SQL})"),
    ),
    sa.Index(None, "status", "updated_at"),
    sa.Index(None, "merchant_id", "created_at", "id"),  # listing, newest first, by pages
    # the searches by customer, failure code (console, merchant API; newest first), email
    # and phone, and a card's tries: each index holds only the payments that have the
    # value, since a search always names one (migration 0026)
    _sparse_index("merchant_id", "customer_id", "created_at"),
    _sparse_index("merchant_id", "failure_code", "created_at", "id"),
    _sparse_index("merchant_id", "customer_email_index", "created_at"),
    _sparse_index("merchant_id", "customer_phone_index", "created_at"),
    _sparse_index("payment_token"),
    # the failed payments alone, with their codes: risk velocity's question of each
    # earlier payment (store/risk_assessment.py) is answered from an index a few per
    # cent the size of the payments', not from their rows
    sa.Index(
        "ix_payments_failed",
        "id",
        "failure_code",
        sqlite_where=sa.text("status = 'failed'"),
        postgresql_where=sa.text("status = 'failed'"),
    ),
    sa.CheckConstraint("amount > 0", name="ck_payments_amount_positive"),
    sa.CheckConstraint(
        "amount_refunded >= 0 AND amount_refund_pending >= 0"
        " AND amount_refunded + amount_refund_pending <= amount",
        name="ck_payments_refunds_within_amount",
    ),
)

attempts = sa.Table(
    "attempts",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("payment_id", Id, sa.ForeignKey("payments.id"), nullable=False),
    sa.Column("seq", sa.Integer(), nullable=False),
    sa.Column("provider", sa.String(64), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("idempotency_key", sa.String(80), nullable=False, unique=True),
    sa.Column("provider_reference", sa.String(128)),
    sa.Column("raw_code", sa.String(128)),
    sa.Column("raw_message", sa.String(500)),
    sa.Column("unified_code", sa.String(64)),
    sa.Column("decision", sa.String(32)),
    sa.Column("reason", sa.String(500)),
    sa.Column("latency_ms", sa.Integer()),
    sa.Column("trace_id", sa.String(32)),
    sa.Column("request", JSON, nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("finished_at", UTCDateTime()),
    # the process instance (instances.id) that calls the provider for a pending attempt:
    # when it is known dead, the worker settles the attempt at once
    sa.Column("owner", Id),
    # a provider's next action for the customer (a redirect URL, a QR code)
    sa.Column("next_action", JSON),
    sa.UniqueConstraint("payment_id", "seq"),
    # never charge twice: the database itself allows one succeeded attempt per payment
    sa.Index(
        "uq_attempts_one_success_per_payment",
        "payment_id",
        unique=True,
        sqlite_where=sa.text("status = 'succeeded'"),
        postgresql_where=sa.text("status = 'succeeded'"),
    ),
    sa.Index(None, "status", "created_at"),
    sa.Index(None, "created_at"),  # the calls of a time window (incident diagnosis)
)

refunds = sa.Table(
    "refunds",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("payment_id", Id, sa.ForeignKey("payments.id"), nullable=False),
    sa.Column("amount", sa.BigInteger(), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("reason", sa.String(200)),
    sa.Column("provider", sa.String(64), nullable=False),
    sa.Column("idempotency_key", sa.String(80), nullable=False, unique=True),
    sa.Column("provider_reference", sa.String(128)),
    sa.Column("raw_code", sa.String(128)),
    sa.Column("raw_message", sa.String(500)),
    # merchant: asked for; duplicate: an extra charge paymend sends back on its own
    sa.Column("kind", sa.String(16), nullable=False, server_default="merchant"),
    sa.Column("attempt_id", Id),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Index(None, "payment_id"),
    sa.CheckConstraint("amount > 0", name="ck_refunds_amount_positive"),
)

_UNPUBLISHED = sa.text("published_at IS NULL")

events = sa.Table(
    "events",
    metadata,
    # seq orders events as they were committed; id is the stable id receivers dedupe on
    sa.Column(
        "seq",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("id", Id, nullable=False, unique=True),
    sa.Column("merchant_id", Id, sa.ForeignKey("merchants.id"), nullable=False),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("subject_id", Id, nullable=False),
    sa.Column("payload", JSON, nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("published_at", UTCDateTime()),
    # the relay's backlog, in order: an event leaves this index once published, so it
    # stays the size of the backlog however large the table grows
    sa.Index(
        "ix_events_unpublished",
        "seq",
        sqlite_where=_UNPUBLISHED,
        postgresql_where=_UNPUBLISHED,
    ),
    sa.Index(None, "subject_id"),
    sa.Index(None, "merchant_id", "seq"),  # a merchant's events, newest first
)

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("merchant_id", Id, sa.ForeignKey("merchants.id"), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("request_path", sa.String(255), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("response_status", sa.Integer()),
    sa.Column("response_body", JSON),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),  # in progress: when claimed
    # who runs the request (instances.id) and the claim's own token: a claim taken over
    # from a dead owner gets a new token, so the old request can no longer link or finish
    sa.Column("owner", Id),
    sa.Column("claim_token", sa.String(40)),
    # what the request created (payment, refund, compensation), linked in the very
    # transaction that created it: a key whose request died answers with it
    sa.Column("resource_kind", sa.String(16)),
    sa.Column("resource_id", Id),
)

compensations = sa.Table(
    "compensations",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("payment_id", Id, sa.ForeignKey("payments.id"), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # coupon | credit
    sa.Column("amount", sa.BigInteger(), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("reason", sa.String(500), nullable=False),
    sa.Column("granted_by", sa.String(200), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Index(None, "payment_id"),
    sa.CheckConstraint("amount > 0", name="ck_compensations_amount_positive"),
)
