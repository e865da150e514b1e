"""How controls, incidents, operators and keys look in the ops API (and in the
`paymend` command's `--json` output, which shows operators and keys the same way)."""

from __future__ import annotations

from datetime import datetime

from paymend.api import ops_shapes as shapes
from paymend.domain.control import Control
from paymend.domain.incident import Incident, IncidentEvent
from paymend.engine.access import Issued
from paymend.store.keys import ApiKey
from paymend.store.operators import Operator


def _ts(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def control_json(c: Control) -> shapes.Control:
    return {
        "id": c.id,
        "kind": c.kind,
        "scope": c.scope,
        "value": c.value,
        "method": c.method,
        "reason": c.reason,
        "set_by": c.set_by,
        "created_at": c.created_at.isoformat(),
        "ended_at": _ts(c.ended_at),
        "ended_by": c.ended_by,
        "amount_above": c.amount_above,
        "currency": c.currency,
        "ends_at": _ts(c.ends_at),
    }


def incident_summary(i: Incident) -> shapes.IncidentSummary:
    return {
        "id": i.id,
        "playbook": i.playbook,
        "title": i.title,
        "severity": i.severity,
        "status": i.status,
        "scope": i.scope,
        "scope_key": i.scope_key,
        "opened_at": i.opened_at.isoformat(),
        "resolved_at": _ts(i.resolved_at),
        "acknowledged_at": _ts(i.acknowledged_at),
        "acknowledged_by": i.acknowledged_by,
        "affected_payments": i.affected_payments,
        "diagnosis": i.diagnosis,
        "review": i.review,
    }


def incident_json(i: Incident) -> shapes.Incident:
    """The incident with its timeline (read with it: `store.incidents.get`)."""
    return {**incident_summary(i), "events": [_event(e) for e in i.events or ()]}


def _event(e: IncidentEvent) -> shapes.IncidentEvent:
    return {
        "id": e.id,
        "at": e.at.isoformat(),
        "kind": e.kind,
        "message": e.message,
        "details": e.details,
    }


def operator_json(op: Operator) -> shapes.Operator:
    return {
        "id": op.id,
        "name": op.name,
        "role": op.role.value,
        "created_at": op.created_at.isoformat(),
    }


def key_json(k: ApiKey, now: datetime) -> shapes.ApiKey:
    """A key without its secret; its status as of `now`."""
    return {
        "id": k.id,
        "hint": k.hint,
        "status": k.status(now),
        "created_at": k.created_at.isoformat(),
        "expires_at": _ts(k.expires_at),
        "revoked_at": _ts(k.revoked_at),
        "last_used_at": _ts(k.last_used_at),
    }


def new_key_json(issued: Issued, now: datetime) -> shapes.NewKey:
    return {**key_json(issued.key, now), "secret": issued.secret}
