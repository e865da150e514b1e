"""One payment's decision from its features, the lists it is on and the rules.

Pure: the engine (engine/risk_gate.py) gathers the counters and the history, this puts
them together, fires the live rules (and a shadow version's, if one runs beside it) and
orders the matches (risk/model.py STAGES).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from paymend.risk.features import DEFAULTS, FEATURES, defaults
from paymend.risk.model import Decision, Fired, ListAction, ListKind, Verdict, decide
from paymend.risk.rules import RuleSet
from paymend.risk.score import History, limit, score


@dataclass(frozen=True, slots=True)
class Listed:
    """A list entry the payment matched."""

    kind: ListKind
    action: ListAction

    def fired(self) -> Fired:
        verdict = Verdict.ALLOW if self.action is ListAction.ALLOW else Verdict.BLOCK
        return Fired(f"list:{self.action.value}:{self.kind.value}", verdict)


def history_features(
    base: dict[str, Any],
    velocity: dict[str, float],
    rules: RuleSet,
    customer: History,
    card: History,
    device_new: bool,
) -> dict[str, Any]:
    """The behaviour features: scores, the dynamic limits and where the payment stands.
    The customer's age is the older of their account's (`customer_since`) and their
    first payment's: an account opened years ago is not new on its first payment here."""
    opened = float(base.get("customer_age_days", -1))
    if opened > customer.age_days:
        customer = History(customer.successes, customer.refunds, customer.chargebacks, opened)
    customer_score = score(customer) if base.get("customer_id") else 50
    card_score = score(card) if base.get("card_fingerprint") else 50
    base_limit = rules.base_limit(str(base.get("currency", "")))
    customer_limit = limit(base_limit, customer_score)
    card_limit = limit(base_limit, card_score)
    amount = float(base.get("amount_major", 0.0))
    return {
        "customer_age_days": customer.age_days,
        "customer_successes": customer.successes,
        "customer_refunds": customer.refunds,
        "customer_chargebacks": customer.chargebacks,
        "card_successes": card.successes,
        "card_chargebacks": card.chargebacks,
        "device_new": device_new,
        "score": customer_score,
        "card_score": card_score,
        "customer_limit": round(customer_limit, 2),
        "card_limit": round(card_limit, 2),
        "over_customer_limit": bool(
            base.get("customer_id")
            and amount + velocity.get("customer_amount_24h", 0) > customer_limit
        ),
        "over_card_limit": bool(
            base.get("card_fingerprint")
            and amount + velocity.get("card_amount_24h", 0) > card_limit
        ),
    }


def evaluate(
    features: dict[str, Any],
    live: RuleSet,
    shadow: RuleSet | None = None,
    listed: Iterable[Listed] = (),
) -> Decision:
    """The decision on complete features: lists first in the record, then the live
    rules, then the shadow version's (never enforced)."""
    fired = [entry.fired() for entry in listed]
    fired += live.fire(features)
    if shadow is not None:
        fired += shadow.fire(features, all_shadow=True)
    verdict = decide([f for f in fired if not f.shadow])
    shadow_verdict = decide(fired) if any(f.shadow for f in fired) else None
    return Decision(
        verdict,
        live.version,
        int(features.get("score", 50)),
        fired,
        used(features),
        shadow_verdict,
    )


def complete(*parts: dict[str, Any]) -> dict[str, Any]:
    """Every feature, those not given at their defaults (what is not a feature is left
    out; a part that holds features only, as the engine's do, is taken whole)."""
    out = defaults()
    names = FEATURES.keys()
    for part in parts:
        if part.keys() <= names:
            out.update(part)
        else:
            out.update({k: v for k, v in part.items() if k in names})
    return out


def used(features: dict[str, Any]) -> dict[str, Any]:
    """What is worth storing: the features that are not at their default (the rest are
    put back by `complete` when a backtest replays the payment)."""
    zero = DEFAULTS
    return {k: v for k, v in features.items() if k in zero and v != zero[k]}
