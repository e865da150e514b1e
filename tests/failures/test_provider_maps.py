"""The provider maps, file by file: complete for the codes a connector can receive, every
entry sourced, every unified code speakable to customers, and never final where the
request may already have been received."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from paymend.domain.failure import Action
from paymend.failures.catalogue import Catalogue, load_catalogue
from paymend.failures.classify import Classifier, RawAnswer, default_classifier
from paymend.failures.codemaps import HERE as MAPS_DIR
from paymend.failures.codemaps import ProviderMap, load_map
from paymend.failures.messages import load_messages
from paymend.failures.policy import DecisionContext, PriorAttempt, decide

CATALOGUE = load_catalogue()
FILES = sorted(MAPS_DIR.glob("*.yaml"))
MAPS = {path.stem: load_map(path, CATALOGUE) for path in FILES}
C = default_classifier()
# a URL, or a file of this repository named as such
SOURCE = re.compile(r"^(https?://\S+|\S+ \(this repository\))$")


def codes(provider: str, field: str) -> set[str]:
    return {code for (f, code) in MAPS[provider].codes if f == field}


def test_every_provider_file_is_loaded_under_its_own_name() -> None:
    assert {p.stem for p in FILES} == {m.provider for m in MAPS.values()} == set(C.maps)


def test_every_iso_8583_response_code_has_its_own_meaning() -> None:
    card = codes("card", "response_code")
    two_digits = [f"{n:02d}" for n in range(100)]
    assert [c for c in two_digits if c not in card] == []
    for code in two_digits:
        failure = C.classify("card", RawAnswer(code, field="response_code"))
        assert failure.mapped and failure.code != Catalogue.DEFAULT, code
    # the alphanumeric codes Visa and Mastercard acquirers pass through
    alphanumeric = "1A 5C 6P 9G B1 N0 N3 N4 N7 N8 Q1 R0 R1 R2 R3 XA XD Z3 Z5"
    assert set(alphanumeric.split()) <= card


@pytest.mark.parametrize(
    ("provider", "field", "expected"),
    [
        (
            "stripe",
            "error_code",
            "card_declined expired_card incorrect_cvc processing_error rate_limit "
            "idempotency_key_in_use payment_intent_unexpected_state authentication_required "
            "api_key_expired lock_timeout token_in_use payment_method_provider_timeout",
        ),
        (
            "stripe",
            "decline_code",
            "authentication_required authentication_not_handled do_not_honor fraudulent "
            "generic_decline insufficient_funds lost_card stolen_card "
            "mobile_device_authentication_required withdrawal_count_limit_exceeded",
        ),
        ("stripe", "http_status", "400 401 402 403 404 409 424 429 500 502 503 504"),
        (
            "wechatpay",
            "code",
            "FREQUENCY_LIMITED SYSTEM_ERROR SIGN_ERROR PARAM_ERROR NO_AUTH ORDER_PAID ORDER_CLOSED "
            "USERPAYING NOT_ENOUGH ACCOUNT_ERROR BANK_ERROR RULE_LIMIT TRADE_ERROR INVALID_REQUEST "
            "OUT_TRADE_NO_USED ORDER_NOT_EXIST RATE_LIMITED SERVICE_UNAVAILABLE",
        ),
        (
            "wechatpay",
            "err_code",
            "SYSTEMERROR NOAUTH ORDERPAID ORDERCLOSED USERPAYING NOTENOUGH BANKERROR "
            "ORDERNOTEXIST OUT_TRADE_NO_USED",
        ),
        ("wechatpay", "http_status", "202 400 401 403 404 429 500 502 503"),
        (
            "adyen",
            "refusal_reason_code",
            " ".join(str(n) for n in range(47) if n not in (1, 13, 30)),
        ),
        ("adyen", "result_code", "Refused Error Cancelled Pending Received PartiallyAuthorised"),
        ("adyen", "error_code", "000 010 100 101 102 103 704"),
        ("adyen", "http_status", "400 401 403 404 409 422 500"),
        ("alipay", "code", "10003 20000 20001 40001 40002 40004 40006"),
        (
            "alipay",
            "sub_code",
            "ACQ.SYSTEM_ERROR ACQ.INVALID_PARAMETER ACQ.ACCESS_FORBIDDEN ACQ.EXIST_FORBIDDEN_WORD "
            "ACQ.PARTNER_ERROR ACQ.TOTAL_FEE_EXCEED ACQ.PAYMENT_AUTH_CODE_INVALID "
            "ACQ.CONTEXT_INCONSISTENT ACQ.TRADE_HAS_SUCCESS ACQ.TRADE_HAS_CLOSE "
            "ACQ.BUYER_BALANCE_NOT_ENOUGH ACQ.BUYER_BANKCARD_BALANCE_NOT_ENOUGH "
            "ACQ.ERROR_BALANCE_PAYMENT_DISABLE ACQ.BUYER_SELLER_EQUAL ACQ.TRADE_BUYER_NOT_MATCH "
            "ACQ.BUYER_ENABLE_STATUS_FORBID ACQ.PULL_MOBILE_CASHIER_FAIL "
            "ACQ.MOBILE_PAYMENT_SWITCH_OFF "
            "ACQ.PAYMENT_FAIL ACQ.BUYER_PAYMENT_AMOUNT_DAY_LIMIT_ERROR ACQ.BEYOND_PAY_RESTRICTION "
            "ACQ.BEYOND_PER_RECEIPT_RESTRICTION ACQ.BUYER_PAYMENT_AMOUNT_MONTH_LIMIT_ERROR "
            "ACQ.SELLER_BEEN_BLOCKED ACQ.ERROR_BUYER_CERTIFY_LEVEL_LIMIT "
            "ACQ.PAYMENT_REQUEST_HAS_RISK "
            "ACQ.NO_PAYMENT_INSTRUMENTS_AVAILABLE ACQ.USER_FACE_PAYMENT_SWITCH_OFF "
            "ACQ.INVALID_STORE_ID ACQ.TRADE_NOT_EXIST ACQ.TRADE_STATUS_ERROR "
            "ACQ.REASON_TRADE_BEEN_FREEZEN ACQ.SELLER_BALANCE_NOT_ENOUGH "
            "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL ACQ.TRADE_NOT_ALLOW_REFUND "
            "isv.invalid-signature isv.invalid-app-id aop.invalid-auth-token",
        ),
    ],
    ids=lambda v: v if len(v) < 30 else v[:27] + "...",
)
def test_the_codes_each_connector_can_receive_are_mapped(
    provider: str, field: str, expected: str
) -> None:
    missing = sorted(set(expected.split()) - codes(provider, field))
    assert missing == []


def test_adyen_refusals_are_known_by_name_as_by_number() -> None:
    adyen = MAPS["adyen"]
    names = [m for (f, _), m in adyen.codes.items() if f == "refusal_reason"]
    assert len(names) == len(codes("adyen", "refusal_reason_code")) - 1  # 0 has no name
    for named in names:
        number = named.entry.description.split(":")[0].removeprefix("refusalReasonCode ")
        assert adyen.codes[("refusal_reason_code", number)].entry.unified == named.entry.unified


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_entry_cites_where_it_came_from(path: Path) -> None:
    pmap = MAPS[path.stem]
    used = {m.source_url for m in pmap.codes.values()} | {
        a.source_url for a in pmap.advice.values()
    }
    assert used, "a provider file without entries"
    for mapped in pmap.codes.values():
        assert SOURCE.match(mapped.source_url), (mapped.entry.code, mapped.source_url)
    for adv in pmap.advice.values():
        assert SOURCE.match(adv.source_url), (adv.entry.code, adv.source_url)


def test_every_declared_source_is_cited_by_some_entry() -> None:
    import yaml

    for path in FILES:
        declared = set(yaml.safe_load(path.read_text(encoding="utf-8"))["sources"].values())
        pmap = MAPS[path.stem]
        used = {m.source_url for m in pmap.codes.values()} | {
            a.source_url for a in pmap.advice.values()
        }
        assert declared - used == set(), path.name


def test_every_unified_code_used_can_be_told_to_customers_in_every_locale() -> None:
    messages = load_messages(CATALOGUE)
    used = {m.entry.unified for pmap in MAPS.values() for m in pmap.codes.values()}
    assert used <= set(CATALOGUE.codes())
    assert {"en", "zh-CN"} <= set(messages.locales)
    for code in sorted(used):
        public = messages.public_code(code)
        for locale in ("en", "zh-CN"):
            assert public in messages.files[locale].messages, (code, locale)


# Answers that say the request may already have been received: a duplicate transmission,
# an object in an unexpected state, a timeout downstream, "not found" right after a
# timeout, a payer still paying, an approval arriving as a failure. None is final until
# the provider has been asked.
QUERY_FIRST: dict[str, list[tuple[str, str]]] = {
    "card": [
        ("response_code", "94"),  # duplicate transmission
        ("response_code", "68"),  # response received too late
        ("response_code", "09"),  # request in progress
        ("response_code", "25"),  # unable to locate record
        ("response_code", "97"),  # Cartes Bancaires: global surveillance timeout
        ("response_code", "96"),  # system malfunction
        ("response_code", "00"),  # approved, yet reported as a failure
        ("response_code", "10"),  # approved for a partial amount
    ],
    "stripe": [
        ("error_code", "payment_intent_unexpected_state"),
        ("error_code", "setup_intent_unexpected_state"),
        ("error_code", "intent_invalid_state"),
        ("error_code", "idempotency_key_in_use"),
        ("error_code", "lock_timeout"),
        ("error_code", "token_in_use"),
        ("error_code", "payment_method_provider_timeout"),
        ("error_code", "processing_error"),
        ("error_code", "charge_already_captured"),
        ("decline_code", "duplicate_transaction"),
        ("error_type", "idempotency_error"),
        ("error_type", "api_error"),
        ("http_status", "409"),
        ("http_status", "500"),
    ],
    "adyen": [
        ("refusal_reason_code", "4"),  # Acquirer Error
        ("refusal_reason", "Acquirer Error"),
        ("result_code", "Pending"),
        ("result_code", "Received"),
        ("result_code", "Error"),
        ("error_code", "704"),  # request already processed or in progress
        ("http_status", "409"),
        ("http_status", "500"),
    ],
    "wechatpay": [
        ("code", "USERPAYING"),
        ("err_code", "USERPAYING"),
        ("code", "ORDER_NOT_EXIST"),
        ("err_code", "ORDERNOTEXIST"),
        ("code", "SYSTEM_ERROR"),
        ("err_code", "SYSTEMERROR"),
        ("code", "BANK_ERROR"),
        ("err_code", "BANKERROR"),
        ("code", "OUT_TRADE_NO_USED"),
        ("err_code", "ORDERPAID"),
        ("http_status", "202"),
        ("http_status", "404"),
        ("http_status", "500"),
    ],
    "alipay": [
        ("code", "10003"),  # user paying
        ("code", "20000"),  # service unavailable: outcome unknown
        ("sub_code", "ACQ.TRADE_NOT_EXIST"),
        ("sub_code", "ACQ.SYSTEM_ERROR"),
        ("sub_code", "ACQ.TRADE_HAS_SUCCESS"),
        ("sub_code", "ACQ.CONTEXT_INCONSISTENT"),
        ("sub_code", "ACQ.TRADE_BUYER_NOT_MATCH"),
    ],
}


def test_every_connector_provider_declares_its_query_first_codes() -> None:
    connectors = {p for p in MAPS if p not in ("transport", "simulator")}
    assert connectors == set(QUERY_FIRST)


@pytest.mark.parametrize(
    ("provider", "field", "code"),
    [(p, f, c) for p, pairs in QUERY_FIRST.items() for f, c in pairs],
    ids=lambda v: str(v),
)
def test_a_code_that_may_follow_a_received_request_is_never_final_without_a_query(
    provider: str, field: str, code: str
) -> None:
    path = MAPS_DIR / f"{provider}.yaml"
    pmap: ProviderMap = load_map(path, CATALOGUE)  # the file as shipped
    assert (field, code) in pmap.codes, f"{path.name} lacks {field} {code}"
    classifier = Classifier(CATALOGUE, {provider: pmap}, C.messages)
    failure = classifier.classify(provider, RawAnswer(code, field=field))
    assert failure.mapped and failure.code != Catalogue.DEFAULT
    assert failure.action is Action.QUERY_STATUS, failure.code
    # whatever the channel's situation, the first step is the status query
    for left, remaining in (((), 30.0), (("c2",), 30.0), (("c2",), 0.5)):
        ctx = DecisionContext(
            "c1", [PriorAttempt("c1", failure.code)], channels_left=left, remaining_s=remaining
        )
        assert decide(failure, ctx).action is Action.QUERY_STATUS
    # once the query proved nothing was charged, the payment may move on or end
    known = DecisionContext(
        "c1", [PriorAttempt("c1", failure.code)], channels_left=("c2",), status_known=True
    )
    assert decide(failure, known).action is not Action.QUERY_STATUS
