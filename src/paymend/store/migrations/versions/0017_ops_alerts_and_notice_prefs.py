"""ops_pages, ops_alerts, ops_alert_attempts, ops_silences; customer_notice_prefs

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def _at(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "ops_pages",
        sa.Column("incident_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        _at("level_since"),
        sa.Column("opened_sent", sa.Boolean(), nullable=False),
        sa.Column("reminders", sa.Integer(), nullable=False),
        _at("remind_at", True),
        sa.Column("last_event_id", sa.Integer(), nullable=False),
        _at("created_at"),
        _at("updated_at"),
        sa.PrimaryKeyConstraint("incident_id", name=op.f("pk_ops_pages")),
    )
    with op.batch_alter_table("ops_pages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ops_pages_status"), ["status"], unique=False)
    op.create_table(
        "ops_alerts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("dedupe_key", sa.String(length=200), nullable=False),
        sa.Column("incident_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("route", sa.String(length=40), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("tries", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        _at("created_at"),
        _at("updated_at"),
        _at("sent_at", True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ops_alerts")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_ops_alerts_dedupe_key")),
    )
    with op.batch_alter_table("ops_alerts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ops_alerts_incident_id"), ["incident_id"], unique=False
        )
    op.create_table(
        "ops_alert_attempts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("alert_id", sa.String(length=40), nullable=False),
        sa.Column("route", sa.String(length=40), nullable=False),
        sa.Column("delivered", sa.Boolean(), nullable=False),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        _at("at"),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["ops_alerts.id"], name=op.f("fk_ops_alert_attempts_alert_id_ops_alerts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ops_alert_attempts")),
    )
    with op.batch_alter_table("ops_alert_attempts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ops_alert_attempts_alert_id"), ["alert_id"], unique=False
        )
    op.create_table(
        "ops_silences",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("matchers", _JSON, nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        _at("created_at"),
        _at("ends_at"),
        _at("ended_at", True),
        sa.Column("ended_by", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ops_silences")),
    )
    with op.batch_alter_table("ops_silences", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ops_silences_ends_at"), ["ends_at"], unique=False)
    op.create_table(
        "customer_notice_prefs",
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.String(length=200), nullable=False),
        sa.Column("opt_out", _JSON, nullable=False),
        sa.Column("wechat_openid_sealed", sa.String(length=400), nullable=True),
        sa.Column("wechat_openid_masked", sa.String(length=80), nullable=True),
        _at("updated_at"),
        sa.PrimaryKeyConstraint(
            "merchant_id", "customer_id", name=op.f("pk_customer_notice_prefs")
        ),
    )


def downgrade() -> None:
    op.drop_table("customer_notice_prefs")
    op.drop_table("ops_silences")
    op.drop_table("ops_alert_attempts")
    op.drop_table("ops_alerts")
    op.drop_table("ops_pages")
