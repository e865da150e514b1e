"""The decision order: challenge rules, then allow lists, then block, then review; the
first decisive stage wins and shadow matches never decide. A property over any mix of
matches, and the same through real rules and lists."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from paymend.risk.assess import Listed, complete, evaluate
from paymend.risk.model import STAGES, Fired, ListAction, ListKind, Verdict, decide
from paymend.risk.rules import load
from paymend.risk.score import History, limit, score

fired_rule = st.builds(
    Fired, st.sampled_from(["a", "b", "c"]), st.sampled_from(list(Verdict)), st.booleans()
)


@given(st.lists(fired_rule, max_size=12))
def test_the_first_decisive_stage_wins(fired: list[Fired]) -> None:
    enforced = [f for f in fired if not f.shadow]
    verdict = decide(enforced)
    expected = next((s for s in STAGES if s in {f.action for f in enforced}), Verdict.ALLOW)
    assert verdict is expected
    if verdict is not Verdict.ALLOW:
        # whatever later stages add, the earlier decisive match still wins
        later = STAGES[STAGES.index(verdict) + 1 :]
        assert decide([*enforced, *(Fired("x", s) for s in later)]) is verdict
        # and an earlier stage, once it matches, takes over
        for earlier in STAGES[: STAGES.index(verdict)]:
            assert decide([*enforced, Fired("y", earlier)]) is earlier


RULES = """\
version: "order"
rules:
  - name: review_big
    action: review
    when: amount_major > 100
  - name: block_device
    action: block
    when: device_id == "dev-bad"
  - name: challenge_mismatch
    action: challenge
    when: country_mismatch
  - name: shadow_block_all
    action: block
    shadow: true
    when: amount > 0
"""


@given(
    big=st.booleans(),
    bad_device=st.booleans(),
    mismatch=st.booleans(),
    allow_listed=st.booleans(),
    block_listed=st.booleans(),
)
def test_real_rules_and_lists_follow_the_order(
    big: bool, bad_device: bool, mismatch: bool, allow_listed: bool, block_listed: bool
) -> None:
    rules = load(Path("order.yaml"), RULES)
    features = complete(
        {
            "amount": 50_000 if big else 500,
            "amount_major": 500.0 if big else 5.0,
            "device_id": "dev-bad" if bad_device else "dev-ok",
            "country_mismatch": mismatch,
        }
    )
    listed = [Listed(ListKind.CARD, ListAction.ALLOW)] * allow_listed
    listed += [Listed(ListKind.DEVICE, ListAction.BLOCK)] * block_listed
    decision = evaluate(features, rules, listed=listed)
    if mismatch:
        expected = Verdict.CHALLENGE
    elif allow_listed:
        expected = Verdict.ALLOW
    elif bad_device or block_listed:
        expected = Verdict.BLOCK
    elif big:
        expected = Verdict.REVIEW
    else:
        expected = Verdict.ALLOW
    assert decision.verdict is expected
    assert decision.shadow_verdict is not None  # the shadow rule fired, recorded
    assert "shadow_block_all" in [f.rule for f in decision.fired if f.shadow]


@given(st.integers(0, 40), st.integers(0, 5), st.integers(0, 3), st.floats(-1, 3000))
def test_the_score_rewards_history_and_punishes_chargebacks(
    successes: int, refunds: int, chargebacks: int, age: float
) -> None:
    h = History(successes, refunds, chargebacks, age)
    s = score(h)
    assert 0 <= s <= 100
    assert score(History(successes + 1, refunds, chargebacks, age)) >= s
    assert score(History(successes, refunds, chargebacks + 1, age)) <= s
    assert limit(1000, s) <= limit(1000, min(100, s + 1))


def test_limits_double_every_25_points() -> None:
    assert score(History()) == 50
    assert limit(2000, 50) == 2000
    assert limit(2000, 75) == 4000
    assert limit(2000, 25) == 1000
    good = score(History(successes=15, age_days=365))
    assert good == 90 and limit(2000, good) > 6000
    assert score(History(successes=15, chargebacks=2)) < 50
