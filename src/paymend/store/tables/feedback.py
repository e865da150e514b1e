"""What customers tell us about a payment or a help article: a rating or a yes/no,
preset reasons, and free text already masked (engine/feedback.py), with the payment's
failure, channel, method and bank copied in so the pain-point report groups without
joins."""

from __future__ import annotations

import sqlalchemy as sa

from paymend.store.tables.columns import JSON, Id, UTCDateTime, metadata

feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("merchant_id", Id),  # None: a help article read without a payment
    sa.Column("payment_id", Id),
    sa.Column("source", sa.String(16), nullable=False),  # status_page | help | api
    sa.Column("step", sa.String(40), nullable=False),  # where in the journey it was said
    sa.Column("rating", sa.Integer()),  # 1 (bad) to 5 (good)
    sa.Column("helpful", sa.Boolean()),  # "did this help?"
    sa.Column("reasons", JSON, nullable=False),  # preset reasons, in order
    sa.Column("text", sa.String(1000), nullable=False),  # masked for PII and card data
    sa.Column("failure_code", sa.String(64), nullable=False),  # "" none
    sa.Column("channel", sa.String(64), nullable=False),
    sa.Column("method", sa.String(32), nullable=False),
    sa.Column("bank", sa.String(64), nullable=False),
    sa.Column("locale", sa.String(16), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Index(None, "created_at"),
    sa.Index(None, "payment_id"),
)
