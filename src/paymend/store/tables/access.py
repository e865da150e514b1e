"""Who uses paymend: merchants, operators and their API keys."""

from __future__ import annotations

import sqlalchemy as sa

from paymend.store.tables.columns import JSON, Id, UTCDateTime, metadata

merchants = sa.Table(
    "merchants",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("settings", JSON, nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Index(None, "name", unique=True),  # the CLI and the ops API name merchants by it
)


def _key_table(name: str, owner: str) -> sa.Table:
    """API keys of merchants or operators: several per owner (rotation overlaps them),
    stored as SHA-256 hashes; a key works while it is neither revoked nor expired."""
    return sa.Table(
        name,
        metadata,
        sa.Column("id", Id, primary_key=True),
        sa.Column(f"{owner}_id", Id, sa.ForeignKey(f"{owner}s.id"), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("hint", sa.String(16), nullable=False),  # sk_…abcd: tells keys apart
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime()),  # set by a rotation's overlap, or at creation
        sa.Column("revoked_at", UTCDateTime()),
        sa.Column("last_used_at", UTCDateTime()),  # to the minute: written at most that often
        sa.Index(None, f"{owner}_id"),
    )


merchant_keys = _key_table("merchant_keys", "merchant")

operators = sa.Table(
    "operators",
    metadata,
    # the people of the ops API; the audit log names them as operator:<name>
    sa.Column("id", Id, primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("role", sa.String(16), nullable=False),  # viewer | support | ops | admin
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("password_hash", sa.String(200)),  # argon2id, for the console; None: no login
)

operator_keys = _key_table("operator_keys", "operator")

operator_sessions = sa.Table(
    "operator_sessions",
    metadata,
    # console log-ins: the cookie holds a random token, the row its SHA-256 hash; a
    # session ends at logout, after idling, or at its fixed end, whichever comes first
    sa.Column("id", sa.String(64), primary_key=True),  # the token's hash
    sa.Column("operator_id", Id, sa.ForeignKey("operators.id"), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("last_seen_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    sa.Column("ended_at", UTCDateTime()),
    sa.Index(None, "operator_id"),
)

login_failures = sa.Table(
    "login_failures",
    metadata,
    # each failed console log-in: the name typed (an operator or not) and the client's
    # address, counted over a window to refuse guessing (console/accounts.py)
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("ip", sa.String(64), nullable=False),
    sa.Index(None, "name", "at"),
    sa.Index(None, "ip", "at"),
)
