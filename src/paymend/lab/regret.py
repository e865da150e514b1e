"""Regret: a payment the oracle could have saved and paymend did not, and why.

The cause is read from what the engine recorded for the payment (its status, its
attempts, their decisions and reasons), first match wins:

- `held`: a playbook held the payment for review (large payments of a failing scope);
  nobody releases it in the lab;
- `paused`: its bank or region, or every channel of its method, was paused until its
  deadline (it waited: engine/waiting.py), so no provider was called;
- `unfinished`: still processing or awaiting 3-D Secure when the run ended, or never
  recorded at all (also counted in `lost_payments`);
- `retry_budget`: a retry was refused because the channel's retry budget was spent;
- `attempt_limit`: the payment used all of its attempts (`max_attempts`);
- `channel_skipped`: paymend never called the channel the oracle succeeds on: its circuit
  was open for the payment (or a playbook's), so routing and failover went around it;
- `gave_up_in_fault`: paymend stopped (no retry left, or not retried) while the fault
  lasted; the oracle calls again once the fault is over, within `settle_within_s`;
- `unlucky_draw`: paymend's calls met this payment's technical errors or fault hits on
  attempts the oracle does not need (it may use another attempt number).
"""

from __future__ import annotations

from collections.abc import Sequence

from paymend.lab.arrivals import Arrival
from paymend.lab.oracle import Limits, Verdict
from paymend.lab.records import AttemptRecord, PaymentRecord
from paymend.lab.scenario import Fault, Scenario

SUCCESS = ("succeeded", "partially_refunded", "refunded")
CAUSES = (
    "held",
    "paused",
    "unfinished",
    "retry_budget",
    "attempt_limit",
    "channel_skipped",
    "gave_up_in_fault",
    "unlucky_draw",
)
BUDGET_SPENT = "retry budget is spent"  # engine/payments.py's reason, word for word


def cause_of(
    verdict: Verdict,
    record: PaymentRecord | None,
    attempts: Sequence[AttemptRecord],
    limits: Limits,
) -> str:
    """Why the engine missed a success the oracle found (`verdict.possible`)."""
    if record is None:
        return "unfinished"
    if record.status == "held":
        return "held"
    if not attempts and record.failure_code in ("issuer_unavailable", "provider_unavailable"):
        return "paused"
    if record.status in ("processing", "requires_action"):
        return "unfinished"
    if any(BUDGET_SPENT in (a.reason or "") for a in attempts):
        return "retry_budget"
    if len(attempts) >= limits.max_attempts:
        return "attempt_limit"
    if verdict.channel not in {a.provider for a in attempts}:
        return "channel_skipped"
    if verdict.at is not None and attempts and verdict.at > attempts[-1].at:
        return "gave_up_in_fault"
    return "unlucky_draw"


def fault_hits(scenario: Scenario, fault: Fault, a: Arrival) -> bool:
    """The payment arrived during `fault` and a channel it could use was in its scope
    (a payer fault: every payment arriving during it)."""
    if not (fault.at <= a.t < fault.end):
        return False
    if fault.kind == "payer":
        return True
    return (
        fault.method in (None, a.method)
        and fault.bank in (None, a.bank)
        and fault.region in (None, a.region)
        and any(
            fault.channel in (None, name) and a.method in ch.methods
            for name, ch in scenario.channels.items()
        )
    )
