"""The industry's retry rules, one test each."""

from __future__ import annotations

import math

import pytest

from paymend.domain.failure import Action
from paymend.failures.classify import RawAnswer, default_classifier
from paymend.failures.policy import (
    VISA_REATTEMPT_LIMIT,
    DecisionContext,
    PriorAttempt,
    backoff,
    decide,
)

C = default_classifier()


def ctx(
    code: str,
    *,
    left: tuple[str, ...] = ("c2",),
    card_reattempts_30d: int = 0,
    remaining_s: float = math.inf,
    credentials_refreshed: bool = False,
    status_known: bool = False,
) -> DecisionContext:
    return DecisionContext(
        channel="c1",
        attempts=[PriorAttempt("c1", code)],
        channels_left=left,
        card_reattempts_30d=card_reattempts_30d,
        remaining_s=remaining_s,
        credentials_refreshed=credentials_refreshed,
        status_known=status_known,
    )


def test_visa_category_1_is_never_reattempted() -> None:
    for code in ("04", "14", "41", "43", "57", "R0"):
        failure = C.classify("card", RawAnswer(code))
        assert failure.visa_category == 1
        decision = decide(failure, ctx(failure.code))
        assert decision.action is Action.DO_NOT_RETRY, code
        assert "category 1" in decision.reason


@pytest.mark.parametrize(
    ("tries", "action"),
    [(VISA_REATTEMPT_LIMIT - 1, Action.RETRY_LATER), (VISA_REATTEMPT_LIMIT, Action.DO_NOT_RETRY)],
)
def test_visa_categories_2_to_4_allow_15_reattempts_in_30_days(tries: int, action: Action) -> None:
    failure = C.classify("card", RawAnswer("91"))  # issuer unavailable, category 2
    assert failure.visa_category == 2
    decision = decide(failure, ctx(failure.code, left=(), card_reattempts_30d=tries))
    assert decision.action is action


@pytest.mark.parametrize("mac", ["MAC03", "MAC21"])
def test_mastercard_mac_03_and_21_forbid_any_new_try(mac: str) -> None:
    failure = C.classify("card", RawAnswer("91", advice_code=mac))  # otherwise retryable
    decision = decide(failure, ctx(failure.code))
    assert decision.action is Action.DO_NOT_RETRY
    assert mac in decision.reason


@pytest.mark.parametrize(
    ("mac", "hours"), [("MAC24", 1), ("MAC25", 24), ("MAC26", 48), ("MAC30", 240)]
)
def test_mastercard_mac_24_to_30_set_the_earliest_next_try(mac: str, hours: int) -> None:
    failure = C.classify("card", RawAnswer("51", advice_code=mac))
    later = decide(failure, ctx(failure.code))  # no deadline: a merchant-initiated retry
    assert later.action is Action.RETRY_LATER and later.after_s == hours * 3600
    checkout = decide(failure, ctx(failure.code, remaining_s=3.0))
    assert checkout.action is Action.CUSTOMER_ACTION


@pytest.mark.parametrize(
    ("provider", "code"),
    [
        ("transport", "TIMEOUT"),
        ("transport", "CONNECTION_RESET"),
        ("stripe", "api_error"),
        ("alipay", "20000"),
    ],
)
def test_an_unknown_outcome_is_queried_before_anything_else(provider: str, code: str) -> None:
    failure = C.classify(provider, RawAnswer(code))
    first = decide(failure, ctx(failure.code))
    assert first.action is Action.QUERY_STATUS
    known = decide(failure, ctx(failure.code, status_known=True))
    assert known.action is Action.FAILOVER and known.channel == "c2"


@pytest.mark.parametrize(
    ("provider", "code"),
    [
        ("stripe", "authentication_required"),
        ("card", "1A"),
        ("simulator", "AUTHENTICATION_REQUIRED"),
        ("adyen", "Authentication required"),
    ],
)
def test_authentication_required_asks_for_3ds_rather_than_failing(provider: str, code: str) -> None:
    failure = C.classify(provider, RawAnswer(code))
    assert decide(failure, ctx(failure.code)).action is Action.AUTHENTICATE


def test_an_expired_token_refreshes_credentials_once() -> None:
    failure = C.classify("simulator", RawAnswer("TOKEN_EXPIRED"))
    first = decide(failure, ctx(failure.code))
    assert first.action is Action.REFRESH_CREDENTIALS and first.alert_ops
    again = decide(failure, ctx(failure.code, credentials_refreshed=True))
    assert again.action is Action.FAILOVER
    stuck = decide(failure, ctx(failure.code, left=(), credentials_refreshed=True))
    assert stuck.action is Action.DO_NOT_RETRY


def test_rate_limiting_prefers_failover_then_backs_off() -> None:
    failure = C.classify("stripe", RawAnswer("rate_limit"))
    assert decide(failure, ctx(failure.code)).action is Action.FAILOVER
    alone = decide(failure, ctx(failure.code, left=()))
    assert alone.action is Action.RETRY_LATER and alone.after_s == failure.retry_base_s
    second = decide(
        failure,
        DecisionContext("c1", [PriorAttempt("c1", failure.code)] * 2, channels_left=()),
    )
    assert second.after_s == 2 * failure.retry_base_s  # exponential
    assert [backoff(failure, n) for n in range(6)][-1] == failure.retry_cap_s  # capped


def test_full_jitter_draws_below_the_cap() -> None:
    failure = C.classify("stripe", RawAnswer("rate_limit"))
    caps: list[float] = []

    def jitter(cap: float) -> float:
        caps.append(cap)
        return cap / 2

    decision = decide(
        failure, DecisionContext("c1", [PriorAttempt("c1", failure.code)], (), jitter=jitter)
    )
    assert caps == [failure.retry_base_s]
    assert decision.after_s == failure.retry_base_s / 2


def test_invalid_requests_are_never_retried_and_flag_ops() -> None:
    for provider, code in (
        ("stripe", "parameter_missing"),
        ("alipay", "40002"),
        ("simulator", "INVALID_PARAMETER"),
    ):
        failure = C.classify(provider, RawAnswer(code))
        decision = decide(failure, ctx(failure.code))
        assert decision.action is Action.DO_NOT_RETRY and decision.alert_ops, code


def test_business_declines_go_back_to_the_customer() -> None:
    for provider, code in (
        ("card", "51"),
        ("stripe", "expired_card"),
        ("alipay", "ACQ.BUYER_BALANCE_NOT_ENOUGH"),
    ):
        failure = C.classify(provider, RawAnswer(code))
        assert decide(failure, ctx(failure.code)).action is Action.CUSTOMER_ACTION, code


def test_fraud_and_lost_cards_are_never_retried_anywhere() -> None:
    for provider, code in (
        ("stripe", "fraudulent"),
        ("stripe", "stolen_card"),
        ("card", "59"),
        ("adyen", "20"),
    ):
        failure = C.classify(
            provider, RawAnswer(code, field="refusal_reason_code" if provider == "adyen" else None)
        )
        assert decide(failure, ctx(failure.code)).action is Action.DO_NOT_RETRY, code


def test_retries_stop_at_the_catalogue_limit_and_the_deadline() -> None:
    failure = C.classify("transport", RawAnswer("CONNECTION_REFUSED"))
    assert failure.retry_max == 1
    first = decide(failure, ctx(failure.code, left=()))
    assert first.action is Action.RETRY_LATER
    spent = DecisionContext("c1", [PriorAttempt("c1", failure.code)] * 2, channels_left=())
    assert decide(failure, spent).action is Action.DO_NOT_RETRY
    no_time = decide(failure, ctx(failure.code, left=(), remaining_s=0.1))
    assert no_time.action is Action.DO_NOT_RETRY
