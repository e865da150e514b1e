"""What ops and playbooks do: routing controls, the audit log, incidents."""

from __future__ import annotations

import sqlalchemy as sa

from paymend.store.tables.columns import JSON, Id, UTCDateTime, metadata

controls = sa.Table(
    "controls",
    metadata,
    # operator and playbook overrides of routing: pause a channel, a bank or a region
    # (optionally for one method), force a channel for a method, or hold a bank's or
    # region's payments above an amount for manual review
    sa.Column("id", Id, primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),  # pause | force_route | hold
    sa.Column("scope", sa.String(16), nullable=False),  # channel | bank | region
    sa.Column("value", sa.String(64), nullable=False),
    sa.Column("method", sa.String(32)),
    sa.Column("reason", sa.String(500), nullable=False),
    sa.Column("set_by", sa.String(200), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("ended_at", UTCDateTime()),
    sa.Column("ended_by", sa.String(200)),
    sa.Column("amount_above", sa.BigInteger()),  # hold: minor units of `currency`
    sa.Column("currency", sa.String(3)),  # hold: it applies to payments in this currency
    sa.Column("ends_at", UTCDateTime()),  # it lifts itself then (engine/controls.py)
    # what the control does (kind|scope|value|method|currency|amount_above): two active
    # controls never do the same thing, even when two operators set one at once
    sa.Column("signature", sa.String(200), nullable=False),
    sa.Index(None, "ended_at"),
    sa.Index(
        "uq_controls_one_active_per_signature",
        "signature",
        unique=True,
        sqlite_where=sa.text("ended_at IS NULL"),
        postgresql_where=sa.text("ended_at IS NULL"),
    ),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    # every operator or automatic action: who, when, what, why, with the signal values
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("target", sa.String(200)),
    sa.Column("reason", sa.String(500)),
    sa.Column("details", JSON, nullable=False),
    sa.Index(None, "at"),
    sa.Index(None, "target"),  # a payment's or incident's own entries (the console)
)

incidents = sa.Table(
    "incidents",
    metadata,
    # a broken channel, bank or region as one record: opened and resolved by playbooks,
    # acknowledged and reviewed by operators; reviewed incidents are the case library
    sa.Column("id", Id, primary_key=True),
    sa.Column("playbook", sa.String(64), nullable=False),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),  # critical | major | minor
    sa.Column("status", sa.String(16), nullable=False),  # open | resolved
    sa.Column("scope", JSON, nullable=False),  # {"channel": "sim_a", "bank": "CMB"}
    sa.Column("scope_key", sa.String(200), nullable=False),  # the health key: sim_a|bank=CMB
    sa.Column("opened_at", UTCDateTime(), nullable=False),
    sa.Column("resolved_at", UTCDateTime()),
    sa.Column("acknowledged_at", UTCDateTime()),
    sa.Column("acknowledged_by", sa.String(200)),
    sa.Column("affected_payments", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("diagnosis", JSON, nullable=False),  # [{dimension, value, explanatory_power, …}]
    sa.Column("review", JSON),  # {cause, resolution, lessons, reviewer, reviewed_at}
    # lower-cased words of title, playbook, scope, diagnosis and review: the search index
    sa.Column("search_text", sa.Text(), nullable=False),
    sa.Index(None, "status", "opened_at"),
    sa.Index(None, "scope_key"),
    # one open incident per playbook and scope, even with many workers evaluating playbooks
    sa.Index(
        "uq_incidents_one_open_per_playbook_scope",
        "playbook",
        "scope_key",
        unique=True,
        sqlite_where=sa.text("status = 'open'"),
        postgresql_where=sa.text("status = 'open'"),
    ),
)

incident_events = sa.Table(
    "incident_events",
    metadata,
    # an incident's timeline: signals, actions, recoveries, notes, operator steps
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("incident_id", Id, sa.ForeignKey("incidents.id"), nullable=False),
    sa.Column("at", UTCDateTime(), nullable=False),
    # signal | action | recovery | note | acknowledged | review | resolved
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("message", sa.Text(), nullable=False),
    sa.Column("details", JSON, nullable=False),
    sa.Index(None, "incident_id"),
)
