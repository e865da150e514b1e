"""What a risk decision is: its verdict, the rules that fired, the score and the features.

The verdicts are ordered as the industry orders them (challenge rules, then allow lists,
then block, then review): the first decisive match wins, so a stolen card whose issuer
asks for 3-D Secure is challenged, and an allow-listed customer is never blocked by a
rule written for strangers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Verdict(StrEnum):
    ALLOW = "allow"
    CHALLENGE = "challenge"  # ask for 3-D Secure before any charge
    REVIEW = "review"  # hold for an operator (engine/review.py)
    BLOCK = "block"  # refuse; the customer reads a neutral message


# The order in which matches are decisive: the first stage with an enforced match decides.
STAGES: tuple[Verdict, ...] = (Verdict.CHALLENGE, Verdict.ALLOW, Verdict.BLOCK, Verdict.REVIEW)


class ListKind(StrEnum):
    """What a list entry names. Emails are kept lower-case; IPs as written."""

    CARD = "card"  # a card fingerprint (never the number)
    EMAIL = "email"
    DEVICE = "device"
    IP = "ip"


class ListAction(StrEnum):
    ALLOW = "allow"
    BLOCK = "block"


@dataclass(frozen=True, slots=True)
class Fired:
    """One rule (or list entry) that matched: `shadow` ones are recorded, never enforced."""

    rule: str
    action: Verdict
    shadow: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "action": self.action.value, "shadow": self.shadow}


@dataclass(slots=True)
class Decision:
    """The verdict on one payment, with why. `shadow_verdict` is what the shadow rules
    would have decided on their own (None: none matched)."""

    verdict: Verdict
    rules_version: str
    score: int
    fired: list[Fired] = field(default_factory=list)
    features: dict[str, Any] = field(default_factory=dict)
    shadow_verdict: Verdict | None = None

    @property
    def enforced(self) -> list[Fired]:
        return [f for f in self.fired if not f.shadow]

    @property
    def deciding_rule(self) -> str | None:
        """The first enforced rule of the deciding stage (None: allowed, nothing fired)."""
        return next((f.rule for f in self.enforced if f.action is self.verdict), None)


def decide(fired: list[Fired]) -> Verdict:
    """The verdict of the matches, in STAGES order; nothing decisive: allow."""
    for stage in STAGES:
        if any(f.action is stage for f in fired):
            return stage
    return Verdict.ALLOW
