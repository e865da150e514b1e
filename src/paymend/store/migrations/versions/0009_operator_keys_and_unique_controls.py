"""operators with their own keys; several keys per merchant; unique merchant names;
controls never duplicated; holds per currency

Revision ID: 0009
Revises: 0008

Existing data: each merchant's key moves to merchant_keys (it keeps working); a merchant
whose name another, older merchant already has is renamed `<name> (<id>)`; of identical
active controls the oldest stays and the others are ended, with an audit entry each.
Holds set before this revision carry no currency and keep applying to every currency.
"""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
ACTOR = "paymend:migration-0009"


def _key_table(name: str, owner: str) -> None:
    op.create_table(
        name,
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column(f"{owner}_id", sa.String(length=40), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("hint", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            [f"{owner}_id"], [f"{owner}s.id"], name=op.f(f"fk_{name}_{owner}_id_{owner}s")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{name}")),
        sa.UniqueConstraint("key_hash", name=op.f(f"uq_{name}_key_hash")),
    )
    with op.batch_alter_table(name) as batch:
        batch.create_index(batch.f(f"ix_{name}_{owner}_id"), [f"{owner}_id"], unique=False)


def _key_id() -> str:
    return "key_" + base64.b32encode(secrets.token_bytes(15)).decode().lower()


def _signature(row: sa.Row) -> str:  # type: ignore[type-arg]
    # as store/controls.py Control.signature computes it (kept here: migrations are frozen)
    tail = "|".join("*" if p is None else str(p) for p in (row.method, None, row.amount_above))
    return f"{row.kind}|{row.scope}|{row.value}|{tail}"


def upgrade() -> None:
    conn = op.get_bind()
    now = datetime.now(UTC)

    op.create_table(
        "operators",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operators")),
        sa.UniqueConstraint("name", name=op.f("uq_operators_name")),
    )
    _key_table("operator_keys", "operator")
    _key_table("merchant_keys", "merchant")

    merchants = sa.table(
        "merchants",
        sa.column("id", sa.String),
        sa.column("name", sa.String),
        sa.column("api_key_hash", sa.String),
        sa.column("api_key_hint", sa.String),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    merchant_keys = sa.table(
        "merchant_keys",
        sa.column("id", sa.String),
        sa.column("merchant_id", sa.String),
        sa.column("key_hash", sa.String),
        sa.column("hint", sa.String),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    rows = conn.execute(sa.select(merchants).order_by(merchants.c.created_at, merchants.c.id)).all()
    if rows:
        conn.execute(
            merchant_keys.insert(),
            [
                {
                    "id": _key_id(),
                    "merchant_id": r.id,
                    "key_hash": r.api_key_hash,
                    "hint": r.api_key_hint,
                    "created_at": r.created_at,
                }
                for r in rows
            ],
        )
    seen: set[str] = set()
    for r in rows:  # oldest first: the first merchant of a name keeps it
        if r.name in seen:
            suffix = f" ({r.id})"
            renamed = r.name[: 200 - len(suffix)] + suffix
            conn.execute(merchants.update().where(merchants.c.id == r.id).values(name=renamed))
        seen.add(r.name)
    with op.batch_alter_table("merchants") as batch:
        batch.drop_constraint("uq_merchants_api_key_hash", type_="unique")
        batch.drop_column("api_key_hash")
        batch.drop_column("api_key_hint")
        batch.create_index(batch.f("ix_merchants_name"), ["name"], unique=True)

    with op.batch_alter_table("controls") as batch:
        batch.add_column(sa.Column("currency", sa.String(length=3), nullable=True))
        batch.add_column(sa.Column("signature", sa.String(length=200), nullable=True))
    controls = sa.table(
        "controls",
        sa.column("id", sa.String),
        sa.column("kind", sa.String),
        sa.column("scope", sa.String),
        sa.column("value", sa.String),
        sa.column("method", sa.String),
        sa.column("amount_above", sa.BigInteger),
        sa.column("signature", sa.String),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("ended_at", sa.DateTime(timezone=True)),
        sa.column("ended_by", sa.String),
    )
    audit_log = sa.table(
        "audit_log",
        sa.column("at", sa.DateTime(timezone=True)),
        sa.column("actor", sa.String),
        sa.column("action", sa.String),
        sa.column("target", sa.String),
        sa.column("reason", sa.String),
        sa.column("details", JSON),
    )
    active: dict[str, str] = {}
    for r in conn.execute(sa.select(controls).order_by(controls.c.created_at, controls.c.id)):
        signature = _signature(r)
        values: dict[str, object] = {"signature": signature}
        if r.ended_at is None and signature in active:  # a duplicate: the oldest stays
            values.update(ended_at=now, ended_by=ACTOR)
            conn.execute(
                audit_log.insert().values(
                    at=now,
                    actor=ACTOR,
                    action=f"control.{r.kind}.end",
                    target=f"{r.scope}:{r.value}",
                    reason=f"identical to the older active control {active[signature]}",
                    details={"id": r.id, "kept": active[signature]},
                )
            )
        elif r.ended_at is None:
            active[signature] = r.id
        conn.execute(controls.update().where(controls.c.id == r.id).values(**values))
    with op.batch_alter_table("controls") as batch:
        batch.alter_column("signature", existing_type=sa.String(length=200), nullable=False)
        batch.create_index(
            "uq_controls_one_active_per_signature",
            ["signature"],
            unique=True,
            sqlite_where=sa.text("ended_at IS NULL"),
            postgresql_where=sa.text("ended_at IS NULL"),
        )


def downgrade() -> None:
    conn = op.get_bind()
    with op.batch_alter_table("controls") as batch:
        batch.drop_index("uq_controls_one_active_per_signature")
        batch.drop_column("signature")
        batch.drop_column("currency")

    with op.batch_alter_table("merchants") as batch:
        batch.drop_index(batch.f("ix_merchants_name"))
        batch.add_column(sa.Column("api_key_hash", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("api_key_hint", sa.String(length=16), nullable=True))
    # one key per merchant again: the newest that was not revoked, else an unusable one
    merchants = sa.table(
        "merchants",
        sa.column("id", sa.String),
        sa.column("api_key_hash", sa.String),
        sa.column("api_key_hint", sa.String),
    )
    merchant_keys = sa.table(
        "merchant_keys",
        sa.column("merchant_id", sa.String),
        sa.column("key_hash", sa.String),
        sa.column("hint", sa.String),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("revoked_at", sa.DateTime(timezone=True)),
    )
    for (mid,) in conn.execute(sa.select(merchants.c.id)).all():
        key = conn.execute(
            sa.select(merchant_keys)
            .where(merchant_keys.c.merchant_id == mid, merchant_keys.c.revoked_at.is_(None))
            .order_by(merchant_keys.c.created_at.desc())
            .limit(1)
        ).first()
        digest, hint = (key.key_hash, key.hint) if key else (secrets.token_hex(32), "revoked")
        conn.execute(
            merchants.update()
            .where(merchants.c.id == mid)
            .values(api_key_hash=digest, api_key_hint=hint)
        )
    with op.batch_alter_table("merchants") as batch:
        batch.alter_column("api_key_hash", existing_type=sa.String(length=64), nullable=False)
        batch.alter_column("api_key_hint", existing_type=sa.String(length=16), nullable=False)
        batch.create_unique_constraint("uq_merchants_api_key_hash", ["api_key_hash"])

    for name, owner in (("merchant_keys", "merchant"), ("operator_keys", "operator")):
        with op.batch_alter_table(name) as batch:
            batch.drop_index(batch.f(f"ix_{name}_{owner}_id"))
        op.drop_table(name)
    op.drop_table("operators")
