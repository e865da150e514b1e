"""What the ops API answers, as typed dicts built by `api/ops_views.py` (and, for the
audit log and an incident's diagnosis and review, by the store that reads them)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import WithJsonSchema
from typing_extensions import TypedDict

from paymend.api.shapes import Payment, Timestamp, doc
from paymend.domain.control import ControlKind as Kind
from paymend.domain.control import ControlScope as Scope
from paymend.domain.incident import (
    DiagnosisEntry,
    IncidentEventKind,
    IncidentSeverity,
    IncidentStatus,
    Review,
)
from paymend.domain.roles import ROLE_NAMES
from paymend.store.controls import AuditEntry


def one_of(*values: str) -> Any:
    """A string the document lists the values of (the code keeps it a plain `str`)."""
    return WithJsonSchema({"type": "string", "enum": list(values)})


ControlKind = Annotated[str, one_of(*Kind)]
ControlScope = Annotated[str, one_of(*Scope)]
RoleName = Annotated[str, one_of(*ROLE_NAMES)]
KeyStatus = Annotated[str, one_of("active", "expired", "revoked")]


class Control(TypedDict):
    """A routing control: a pause, a forced route or a hold, set by an operator or a
    playbook."""

    id: Annotated[str, doc("`ctl_…`")]
    kind: ControlKind
    scope: ControlScope
    value: Annotated[str, doc("the channel, bank or region")]
    method: Annotated[str | None, doc("only payments of this method; null: every method")]
    reason: str
    set_by: Annotated[str, doc("`operator:<name>` or `playbook:<name>`")]
    created_at: Timestamp
    ended_at: Timestamp | None
    ended_by: str | None
    amount_above: Annotated[int | None, doc("a hold: payments above this many minor units")]
    currency: Annotated[
        str | None, doc("a hold: the currency of `amount_above`; null: every currency")
    ]
    ends_at: Annotated[
        Timestamp | None, doc("when it lifts itself; null: a playbook's, ended on recovery")
    ]


class ControlPreview(TypedDict):
    """The control `POST /v1/ops/controls` would set (not set: its id is kept nowhere)
    and how many payments since `since` (the last hour) it would have touched: stopped
    (a pause), sent elsewhere first (a forced route) or held for review (a hold)."""

    object: Literal["control_preview"]
    control: Control
    touched: Annotated[int, doc("payments created since `since` it applies to")]
    since: Timestamp


class ControlList(TypedDict):
    """Every active control."""

    object: Literal["list"]
    data: list[Control]


class OpsPayment(Payment):
    """A payment as its merchant sees it, with whose it is."""

    merchant_id: str


class OpsPaymentList(TypedDict):
    """A merchant's payments for one order."""

    object: Literal["list"]
    data: list[OpsPayment]


class HeldPaymentList(TypedDict):
    """The review queue, oldest first: held payments (held before any provider was
    called, so without attempts)."""

    object: Literal["list"]
    data: list[Payment]


class AuditList(TypedDict):
    """The audit log, newest first."""

    object: Literal["list"]
    data: list[AuditEntry]


class IncidentEvent(TypedDict):
    """One entry of an incident's timeline."""

    id: int
    at: Timestamp
    kind: Annotated[str, one_of(*IncidentEventKind)]
    message: str
    details: dict[str, Any]


class IncidentSummary(TypedDict):
    """An incident, as the case library lists it (without its timeline)."""

    id: Annotated[str, doc("`inc_…`")]
    playbook: str
    title: str
    severity: Annotated[str, one_of(*IncidentSeverity)]
    status: Annotated[str, one_of(*IncidentStatus)]
    scope: Annotated[dict[str, str], doc('e.g. `{"channel": "sim_a", "bank": "CMB"}`')]
    scope_key: Annotated[str, doc("the health key of the scope, e.g. `sim_a|bank=CMB`")]
    opened_at: Timestamp
    resolved_at: Timestamp | None
    acknowledged_at: Timestamp | None
    acknowledged_by: str | None
    affected_payments: int
    diagnosis: Annotated[
        list[DiagnosisEntry], doc("the scopes that explain the failures, best first")
    ]
    review: Review | None


class Incident(IncidentSummary):
    """An incident with its timeline, oldest first."""

    events: list[IncidentEvent]


class IncidentList(TypedDict):
    """Incidents, newest first."""

    object: Literal["list"]
    data: list[IncidentSummary]


class Operator(TypedDict):
    """A person of the ops API."""

    id: Annotated[str, doc("`opr_…`")]
    name: str
    role: RoleName
    created_at: Timestamp


class ApiKey(TypedDict):
    """A merchant's or an operator's key, without its secret (only a hint of it)."""

    id: Annotated[str, doc("`key_…`")]
    hint: Annotated[str, doc("the start and end of the secret, to tell keys apart")]
    status: KeyStatus
    created_at: Timestamp
    expires_at: Timestamp | None
    revoked_at: Timestamp | None
    last_used_at: Annotated[Timestamp | None, doc("to the minute")]


class NewKey(ApiKey):
    """A key just made, with its secret: shown in this answer and never again."""

    secret: str


class Me(Operator):
    """The operator of this key, and the key."""

    key: ApiKey


class OperatorWithKeys(Operator):
    """An operator and their keys."""

    keys: list[ApiKey]


class OperatorList(TypedDict):
    """Every operator, with their role and keys."""

    object: Literal["list"]
    data: list[OperatorWithKeys]


class NewOperator(Operator):
    """A new operator and their first key."""

    key: NewKey
    expiring: Annotated[list[ApiKey], doc("always empty: a new operator has no other key")]


class RotatedOperatorKey(TypedDict):
    """An operator's new key; their other keys, in `expiring`, work until the overlap ends."""

    operator: Annotated[str, doc("the operator's name")]
    role: RoleName
    key: NewKey
    expiring: list[ApiKey]


class MerchantKeys(TypedDict):
    """A merchant's keys."""

    merchant_id: str
    merchant: Annotated[str, doc("the merchant's name")]
    object: Literal["list"]
    data: list[ApiKey]


class RotatedMerchantKey(TypedDict):
    """A merchant's new key; their other keys, in `expiring`, work until the overlap ends."""

    merchant_id: str
    merchant: str
    key: NewKey
    expiring: list[ApiKey]
