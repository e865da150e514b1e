"""What the risk endpoints answer (api/risk.py), as typed dicts."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from typing_extensions import TypedDict

from paymend.api.shapes import FiredRule, Timestamp, doc


class RiskDecision(TypedDict):
    """A payment's risk decision, taken before any provider was called."""

    object: Literal["risk_decision"]
    payment_id: str
    verdict: Literal["allow", "challenge", "review", "block"]
    rules_version: str
    score: Annotated[int, doc("the customer's behaviour score, 0-100 (50: a stranger)")]
    rules: list[FiredRule]
    shadow_verdict: Annotated[
        str | None, doc("what the decision would be with the shadow rules enforced")
    ]
    features: Annotated[dict[str, Any], doc("the features used that were not at their default")]
    created_at: Timestamp


class ListEntry(TypedDict):
    id: int
    object: Literal["risk_list_entry"]
    kind: Literal["card", "email", "device", "ip"]
    value: Annotated[str, doc("as shown: an email masked (the list keeps its hash)")]
    action: Literal["allow", "block"]
    reason: str
    created_by: str
    created_at: Timestamp


class ListEntries(TypedDict):
    object: Literal["list"]
    data: list[ListEntry]


class FraudReport(TypedDict):
    object: Literal["fraud_report"]
    payment_id: str
    kind: Literal["chargeback", "fraud"]
    new: Annotated[bool, doc("false: the payment already had a report of this kind")]
    blocked: Annotated[list[str], doc("the list kinds the payment's card, device, email went on")]


class ShadowCount(TypedDict):
    rules_version: str
    verdict: Annotated[str, doc("what was enforced")]
    shadow_verdict: Annotated[str, doc("what the decision would be with the shadow rules")]
    count: int


class ShadowCounts(TypedDict):
    object: Literal["list"]
    data: list[ShadowCount]
