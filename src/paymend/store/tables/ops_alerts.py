"""Ops alerts: one page per incident, each message it sends, every try, and silences."""

from __future__ import annotations

import sqlalchemy as sa

from paymend.store.tables.columns import JSON, Id, UTCDateTime, metadata

ops_pages = sa.Table(
    "ops_pages",
    metadata,
    # an incident's paging: at most one per incident (its primary key), whoever plans it
    sa.Column("incident_id", Id, primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),  # open | acknowledged | closed
    sa.Column("level", sa.Integer(), nullable=False),  # the escalation level paged so far
    sa.Column("level_since", UTCDateTime(), nullable=False),  # escalation counts from here
    sa.Column("opened_sent", sa.Boolean(), nullable=False),  # the first message is planned
    sa.Column("reminders", sa.Integer(), nullable=False),
    sa.Column("remind_at", UTCDateTime()),
    sa.Column("last_event_id", sa.Integer(), nullable=False),  # timeline folded so far
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Index(None, "status"),
)

ops_alerts = sa.Table(
    "ops_alerts",
    metadata,
    # one message of a page to one route: "<incident>:<kind>[:<n>]:<route>" is unique, so
    # a second planner (another worker, a re-run after a crash) cannot make it twice
    sa.Column("id", Id, primary_key=True),
    sa.Column("dedupe_key", sa.String(200), nullable=False, unique=True),
    sa.Column("incident_id", Id, nullable=False),  # or the ops_events row it is about
    sa.Column(
        "kind", sa.String(16), nullable=False
    ),  # opened|reminder|escalated|acknowledged|resolved; alert (an ops event)
    sa.Column("route", sa.String(40), nullable=False),
    sa.Column("level", sa.Integer(), nullable=False),
    sa.Column("title", sa.String(300), nullable=False),
    sa.Column("body", sa.Text(), nullable=False),
    # pending | sent | failed (every try failed) | silenced (a silence matched: not sent)
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("tries", sa.Integer(), nullable=False),
    sa.Column("reason", sa.String(500)),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("sent_at", UTCDateTime()),
    sa.Index(None, "incident_id"),
)

ops_alert_attempts = sa.Table(
    "ops_alert_attempts",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("alert_id", Id, sa.ForeignKey("ops_alerts.id"), nullable=False),
    sa.Column("route", sa.String(40), nullable=False),
    sa.Column("delivered", sa.Boolean(), nullable=False),
    sa.Column("error", sa.String(500)),
    sa.Column("latency_ms", sa.Integer(), nullable=False),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Index(None, "alert_id"),
)

ops_silences = sa.Table(
    "ops_silences",
    metadata,
    # no page for incidents that match every field set here, until `ends_at`
    sa.Column("id", Id, primary_key=True),
    sa.Column("matchers", JSON, nullable=False),  # {playbook?, channel?, bank?, region?}
    sa.Column("reason", sa.String(500), nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("ends_at", UTCDateTime(), nullable=False),
    sa.Column("ended_at", UTCDateTime()),  # ended early
    sa.Column("ended_by", sa.String(200)),
    sa.Index(None, "ends_at"),
)

ops_events = sa.Table(
    "ops_events",
    metadata,
    # a failure ops must hear of that opened no incident (a playbook's alert, a job given
    # up, a webhook endpoint given up on, a duplicate charge, an amount that disagrees):
    # one row per fact, its dedupe key unique; the pager sends it like an incident's
    # first message (its ops_alerts rows name this row's id as their incident_id)
    sa.Column("id", Id, primary_key=True),
    sa.Column("dedupe_key", sa.String(200), nullable=False, unique=True),
    sa.Column("kind", sa.String(32), nullable=False),  # engine/ops_events.py OpsEventKind
    sa.Column("severity", sa.String(16), nullable=False),  # critical | major | minor
    sa.Column("playbook", sa.String(64)),
    sa.Column("scope", JSON, nullable=False),  # {"channel": "sim_a"}: what silences match
    sa.Column("title", sa.String(300), nullable=False),
    sa.Column("facts", JSON, nullable=False),  # ids and codes, never contact data
    # raised | paged | silenced | not_paged (below the routes file's severities)
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Index(None, "status"),
)
