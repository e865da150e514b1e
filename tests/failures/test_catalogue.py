"""The shipped failure data: every mapped code classifies, decides and explains itself."""

from __future__ import annotations

import pytest

from paymend.domain.failure import Action, Kind
from paymend.failures.classify import UNMAPPED, RawAnswer, default_classifier
from paymend.failures.explain import explain
from paymend.failures.policy import DecisionContext, PriorAttempt, decide
from paymend.providers import simulator

CLASSIFIER = default_classifier()
ENTRIES = [
    (name, mapped.entry.field, mapped.entry.code, mapped.entry.unified)
    for name, pmap in sorted(CLASSIFIER.maps.items())
    for mapped in pmap.codes.values()
]
ADVICE = [
    (name, adv.entry.code)
    for name, pmap in sorted(CLASSIFIER.maps.items())
    for adv in pmap.advice.values()
]


def test_the_maps_cover_the_providers_we_promise() -> None:
    assert {"stripe", "card", "alipay", "wechatpay", "adyen", "simulator", "transport"} <= set(
        CLASSIFIER.maps
    )
    assert len(ENTRIES) > 400
    card = CLASSIFIER.maps["card"]
    assert {"05", "51", "N7", "R0"} <= {code for _, code in card.codes}
    assert {f"MAC{n:02d}" for n in (1, 2, 3, 4, 21, 24, 25, 26, 27, 28, 29, 30)} <= set(card.advice)
    alipay = {code for _, code in CLASSIFIER.maps["alipay"].codes}
    # 10000 is success, not a failure; every other gateway code is mapped
    assert {"20000", "20001", "40001", "40002", "40004", "40006"} <= alipay


@pytest.mark.parametrize(("provider", "field", "code", "unified"), ENTRIES, ids=lambda v: str(v))
def test_every_mapped_code_classifies_decides_and_explains(
    provider: str, field: str, code: str, unified: str
) -> None:
    failure = CLASSIFIER.classify(provider, RawAnswer(code, field=field))
    assert failure.code == unified
    assert failure.mapped and failure.source
    assert failure.kind in (Kind.TECHNICAL, Kind.BUSINESS)
    if failure.kind is Kind.BUSINESS:
        assert not failure.counts_against_health  # a decline wave is not an outage
    decision = decide(
        failure,
        DecisionContext(
            channel="c1", attempts=[PriorAttempt("c1", failure.code)], channels_left=["c2"]
        ),
    )
    assert decision.action in Action and decision.reason
    if failure.action is Action.QUERY_STATUS:
        assert decision.action is Action.QUERY_STATUS  # never anything before asking
    for locale in ("en", "zh-CN"):
        info = explain(CLASSIFIER, provider, code, locale)
        assert info["code"] == unified or info["code"] is None  # None: an advice code
        if info["customer_message"]:
            assert info["customer_message"]["title"] and info["customer_message"]["suggestions"]


@pytest.mark.parametrize(("provider", "code"), ADVICE)
def test_every_advice_code_explains_itself(provider: str, code: str) -> None:
    info = explain(CLASSIFIER, provider, code)
    # an advice code that is also a decline code (Stripe's) explains as the decline
    assert (info.get("advice") or info["code"]) and info["source"]


def test_unknown_codes_are_safe_counted_and_flag_ops() -> None:
    before = UNMAPPED.labels("stripe", "brand_new_code")._value.get()
    failure = CLASSIFIER.classify("stripe", RawAnswer("brand_new_code"))
    assert failure.code == "unrecognized_response"
    assert failure.action is Action.QUERY_STATUS  # money may have moved
    assert failure.alert_ops and not failure.mapped
    assert UNMAPPED.labels("stripe", "brand_new_code")._value.get() == before + 1
    assert CLASSIFIER.classify("no_such_provider", RawAnswer("X")).code == "unrecognized_response"
    assert CLASSIFIER.classify("stripe", RawAnswer(None)).code == "unrecognized_response"


def test_the_most_specific_code_wins() -> None:
    answer = RawAnswer("40004", field="code", details=[("sub_code", "ACQ.TRADE_HAS_SUCCESS")])
    failure = CLASSIFIER.classify("alipay", answer)
    assert failure.code == "already_paid" and failure.raw_code == "ACQ.TRADE_HAS_SUCCESS"
    stripe = RawAnswer("card_declined", field="error_code", details=[("decline_code", "lost_card")])
    assert CLASSIFIER.classify("stripe", stripe).code == "lost_or_stolen_card"


def test_transport_codes_apply_to_every_provider() -> None:
    for provider in ("stripe", "alipay", "simulator"):
        assert CLASSIFIER.classify(provider, RawAnswer("TIMEOUT")).code == "provider_timeout"
        assert (
            CLASSIFIER.classify(provider, RawAnswer("CONNECTION_REFUSED")).code
            == "provider_unavailable"
        )


def test_advice_travels_with_the_response_code() -> None:
    failure = CLASSIFIER.classify("card", RawAnswer("51", advice_code="MAC25"))
    assert failure.code == "insufficient_funds"
    assert failure.visa_category == 2
    assert failure.retry_after_s == 24 * 3600


def test_every_answer_of_the_simulator_is_in_its_map_and_an_approval_is_asked_about() -> None:
    codes = [
        simulator.APPROVED,
        *simulator.DECLINE_CODES,
        simulator.AUTHENTICATION_REQUIRED,
        *simulator.ERROR_CODES,
    ]
    unmapped = [c for c in codes if not CLASSIFIER.classify("simulator", RawAnswer(c)).mapped]
    assert unmapped == []
    approved = CLASSIFIER.classify("simulator", RawAnswer(simulator.APPROVED))
    assert (approved.code, approved.action) == ("already_paid", Action.QUERY_STATUS)
