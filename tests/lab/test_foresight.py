"""The oracle and the naive checkout worked out beside the run: the same answers as in
the run's own process, and none when they are not for the run's arrivals."""

from __future__ import annotations

from pathlib import Path

from paymend.lab.foresight import Foresight, answer, good_arrivals
from paymend.lab.fraud import FRAUD_BASE
from paymend.lab.metrics import naive_outcomes, verdicts
from paymend.lab.oracle import Limits
from paymend.lab.runner import CHECKOUT_DEADLINE_S, limits_for, run
from paymend.lab.scenario import load_scenario

SCENARIOS = Path(__file__).parents[2] / "scenarios"
LIMITS = Limits(max_attempts=4, settle_within_s=300.0)


def test_the_child_answers_as_the_run_would() -> None:
    scenario = load_scenario(SCENARIOS / "card-testing.yaml")  # with attacks left out
    good = good_arrivals(scenario)
    assert good and all(a.n < FRAUD_BASE for a in good)
    answers = Foresight(scenario, LIMITS, CHECKOUT_DEADLINE_S).answers(good)
    assert answers == answer(scenario, LIMITS, CHECKOUT_DEADLINE_S, good)


def test_the_child_draws_account_takeovers_as_the_run_does(tmp_path: Path) -> None:
    scenario = load_scenario(SCENARIOS / "account-takeover.yaml")  # takeovers from 4 min
    short = scenario.model_copy(update={"duration": 300.0, "rate": 1.0})
    result = run(short, tmp_root=tmp_path)
    assert result.fraud is not None and result.fraud.arrivals  # the takeovers came
    assert [(a.n, a.t) for a in good_arrivals(short)] == [(a.n, a.t) for a in result.arrivals]
    # the child worked them out beside the run: the run took its answers
    foresight = Foresight(short, limits_for(short), CHECKOUT_DEADLINE_S)
    assert foresight.answers(result.arrivals) == answer(
        short, limits_for(short), CHECKOUT_DEADLINE_S, result.arrivals
    )


def test_answers_for_other_arrivals_are_not_taken() -> None:
    scenario = load_scenario(SCENARIOS / "primary-outage.yaml")
    shorter = scenario.model_copy(update={"duration": 30.0, "rate": 2.0})
    good = good_arrivals(shorter)
    foresight = Foresight(shorter, LIMITS, CHECKOUT_DEADLINE_S)
    assert foresight.answers(good[1:]) is None
    foresight.close()  # and again: nothing is left running


def test_a_run_takes_the_answers_it_would_have_worked_out(tmp_path: Path) -> None:
    scenario = load_scenario(SCENARIOS / "primary-outage.yaml")
    short = scenario.model_copy(update={"duration": 40.0, "rate": 2.0})
    result = run(short, tmp_root=tmp_path)
    assert result.verdicts is not None and result.naive is not None
    judged, naive = answer(short, limits_for(short), CHECKOUT_DEADLINE_S, result.arrivals)
    assert verdicts(result) == judged
    assert naive_outcomes(result) == naive
