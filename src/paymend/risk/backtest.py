"""Backtest: stored payments replayed through a rules version, beside the live one.

Each stored decision kept the features it was decided on and the list entries it
matched, so a candidate version is fired over exactly what the live version saw (the
velocity of that moment, not of today). For every rule of the candidate the report
counts the payments it would have matched and, among them, how many later succeeded
(charged under the live rules: the false-positive estimate) or were reported as a
chargeback or fraud (the fraud it would catch). Payments the live rules stopped have no
outcome to tell; they are counted as such.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from paymend.risk.assess import complete
from paymend.risk.model import Fired, Verdict, decide
from paymend.risk.rules import RuleSet

SUCCEEDED = frozenset({"succeeded", "partially_refunded", "refunded"})


@dataclass(frozen=True, slots=True)
class Stored:
    """One stored decision and what became of its payment."""

    payment_id: str
    verdict: str  # the live decision
    features: dict[str, Any]
    fired: list[dict[str, Any]]
    status: str
    reported: bool  # a chargeback or fraud report came later


@dataclass(slots=True)
class RuleCount:
    action: str
    matched: int = 0
    succeeded: int = 0  # went on to be charged: customers this rule would have stopped
    reported: int = 0  # later charged back or reported as fraud
    unknown: int = 0  # stopped by the live rules: no outcome to tell


@dataclass(slots=True)
class Report:
    version: str
    live_versions: set[str] = field(default_factory=set)
    payments: int = 0
    live: Counter[str] = field(default_factory=Counter)
    candidate: Counter[str] = field(default_factory=Counter)
    changed: int = 0  # payments whose verdict would differ
    rules: dict[str, RuleCount] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "payments": self.payments,
            "live": dict(self.live),
            "candidate": dict(self.candidate),
            "changed": self.changed,
            "rules": {
                name: {
                    "action": c.action,
                    "matched": c.matched,
                    "succeeded": c.succeeded,
                    "reported": c.reported,
                    "unknown": c.unknown,
                }
                for name, c in self.rules.items()
            },
        }


def replay(rows: Iterable[Stored], candidate: RuleSet) -> Report:
    report = Report(candidate.version)
    report.rules = {r.name: RuleCount(r.action.value) for r in candidate.rules}
    for row in rows:
        report.payments += 1
        features = complete(row.features)
        listed = [
            Fired(f["rule"], Verdict(f["action"]))
            for f in row.fired
            if str(f["rule"]).startswith("list:")
        ]
        fired = candidate.fire(features)
        verdict = decide([*listed, *(f for f in fired if not f.shadow)])
        report.live[row.verdict] += 1
        report.candidate[verdict.value] += 1
        report.changed += verdict.value != row.verdict
        for f in fired:
            count = report.rules[f.rule]
            count.matched += 1
            if row.verdict != Verdict.ALLOW.value:
                count.unknown += 1
            elif row.status in SUCCEEDED:
                count.succeeded += 1
            count.reported += row.reported
    return report


def as_text(report: Report) -> str:
    lines = [
        f"rules version {report.version}: {report.payments} stored payments replayed",
        "verdict     live  candidate",
    ]
    for v in Verdict:
        lines.append(f"{v.value:<10} {report.live[v.value]:>5}  {report.candidate[v.value]:>9}")
    lines += [
        f"{report.changed} payments would get another verdict",
        "",
        f"{'rule':<34} {'action':<9} {'matched':>7} {'succeeded':>9} {'reported':>8} "
        f"{'unknown':>7}",
    ]
    for name, c in report.rules.items():
        lines.append(
            f"{name:<34} {c.action:<9} {c.matched:>7} {c.succeeded:>9} {c.reported:>8} "
            f"{c.unknown:>7}"
        )
    lines.append(
        "succeeded: charged under the live rules (good customers the rule would stop, "
        "unless reported); reported: charged back or fraud; unknown: stopped live"
    )
    return "\n".join(lines)
