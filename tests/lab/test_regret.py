"""Regret's causes, read from what the engine recorded for a payment."""

from __future__ import annotations

from paymend.lab.oracle import Limits, Verdict
from paymend.lab.records import AttemptRecord, PaymentRecord
from paymend.lab.regret import BUDGET_SPENT, cause_of

LIMITS = Limits(max_attempts=3, settle_within_s=300.0)
LATER = Verdict(True, "sim_b", 1, 400.0)  # the oracle succeeds on sim_b at 400 s


def tried(*channels: str, reason: str = "provider_error: no retry left") -> list[AttemptRecord]:
    return [
        AttemptRecord(i + 1, ch, "failed", "provider_error", "do_not_retry", reason, 100.0 + i)
        for i, ch in enumerate(channels)
    ]


FAILED = PaymentRecord("failed", "provider_error")


def test_what_never_reached_a_provider() -> None:
    assert cause_of(LATER, PaymentRecord("held", None), [], LIMITS) == "held"
    assert cause_of(LATER, PaymentRecord("failed", "issuer_unavailable"), [], LIMITS) == "paused"
    shut = PaymentRecord("failed", "provider_unavailable")  # its channels paused to the end
    assert cause_of(LATER, shut, [], LIMITS) == "paused"
    assert cause_of(LATER, PaymentRecord("processing", None), [], LIMITS) == "unfinished"
    assert cause_of(LATER, None, [], LIMITS) == "unfinished"
    assert cause_of(LATER, PaymentRecord("processing", None), tried("sim_b"), LIMITS) == (
        "unfinished"
    )


def test_what_stopped_the_attempts() -> None:
    spent = tried("sim_b", reason=f"provider_error: retry; but sim_b's {BUDGET_SPENT}")
    assert cause_of(LATER, FAILED, spent, LIMITS) == "retry_budget"
    assert cause_of(LATER, FAILED, tried("sim_a", "sim_b", "sim_b"), LIMITS) == "attempt_limit"
    assert cause_of(LATER, FAILED, tried("sim_a"), LIMITS) == "channel_skipped"
    assert cause_of(LATER, FAILED, tried("sim_a", "sim_b"), LIMITS) == "gave_up_in_fault"
    sooner = Verdict(True, "sim_b", 2, 100.5)  # a second call on sim_b at once would pass
    assert cause_of(sooner, FAILED, tried("sim_a", "sim_b"), LIMITS) == "unlucky_draw"
