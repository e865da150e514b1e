"""The retry budget keeps a sick channel from a retry storm."""

from __future__ import annotations

from paymend.engine.budget import BudgetSettings, RetryBudget


def test_retries_are_a_share_of_first_attempts_in_the_window() -> None:
    budget = RetryBudget(BudgetSettings(ratio=0.2, window_s=60, floor=3))
    for t in range(100):
        budget.first("sim_a", float(t) * 0.1)
    granted = sum(budget.try_retry("sim_a", 10.0) for _ in range(50))
    assert granted == 20  # 20% of 100 first attempts
    assert budget.try_retry("sim_b", 10.0)  # budgets are per channel
    assert budget.try_retry("sim_a", 200.0)  # the window slid: the floor applies again


def test_a_quiet_channel_still_gets_its_floor() -> None:
    budget = RetryBudget(BudgetSettings(ratio=0.2, window_s=60, floor=3))
    budget.first("sim_a", 0.0)
    assert [budget.try_retry("sim_a", 1.0) for _ in range(4)] == [True, True, True, False]
