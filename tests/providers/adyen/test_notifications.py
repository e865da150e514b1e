"""Adyen's HMAC-signed standard webhooks: the signature over Adyen's fields, checked
against the example Adyen publishes, and what a verified webhook says."""

from __future__ import annotations

import json
from typing import Any

import pytest

from paymend.domain.money import Money
from paymend.providers.adyen import notifications
from paymend.providers.base import ProviderOutcome

# The worked example of https://docs.adyen.com/development-resources/webhooks/
# verify-hmac-signatures/ (also in Adyen's API libraries' tests): its key, its item and
# the signature Adyen computed.
EXAMPLE_KEY = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"
EXAMPLE_SIGNATURE = "coqCmt/IZ4E3CzPvMY8zTjQVL5hYJUiBRg8UU+iCWo0="
KEY = "00" * 16 + "ff" * 16


def example() -> dict[str, Any]:
    return {
        "additionalData": {"hmacSignature": EXAMPLE_SIGNATURE},
        "amount": {"value": 1130, "currency": "EUR"},
        "pspReference": "7914073381342284",
        "eventCode": "AUTHORISATION",
        "eventDate": "2019-05-06T17:15:34.121+02:00",
        "merchantAccountCode": "TestMerchant",
        "merchantReference": "TestPayment-1407325143704",
        "paymentMethod": "visa",
        "success": "true",
    }


def webhook(*items: dict[str, Any]) -> bytes:
    entries = [{"NotificationRequestItem": item} for item in items]
    return json.dumps({"live": "false", "notificationItems": entries}).encode()


def signed(key: str = KEY, **fields: Any) -> dict[str, Any]:
    item = {**example(), **fields}
    item["additionalData"] = {"hmacSignature": notifications.sign(item, key)}
    return item


def test_adyens_published_example_verifies() -> None:
    item = example()
    assert notifications.signing_string(item) == (
        "7914073381342284::TestMerchant:TestPayment-1407325143704:1130:EUR:AUTHORISATION:true"
    )
    assert notifications.sign(item, EXAMPLE_KEY) == EXAMPLE_SIGNATURE
    assert notifications.verified(item, EXAMPLE_KEY)
    assert not notifications.verified({**item, "amount": {"value": 1131, "currency": "EUR"}},
                                      EXAMPLE_KEY)  # fmt: skip


def test_a_verified_authorisation_names_the_attempt_and_its_amount() -> None:
    told = notifications.read(webhook(signed()), KEY, "TestMerchant")
    assert told.idempotency_key == "TestPayment-1407325143704"
    assert told.reference == "7914073381342284"
    assert told.result.outcome is ProviderOutcome.SUCCEEDED
    assert told.amount == Money(1130, "EUR")
    assert (told.reply.status, told.reply.body) == (200, b"[accepted]")


def test_a_refused_authorisation_carries_the_refusal_reason() -> None:
    item = signed(success="false", reason="Not enough balance")
    told = notifications.read(webhook(item), KEY, "TestMerchant")
    assert told.result.outcome is ProviderOutcome.DECLINED
    assert told.result.raw_code == "Not enough balance"


def test_a_refund_names_the_refund_not_an_attempt() -> None:
    item = signed(eventCode="REFUND", originalReference="7914073381342284")
    told = notifications.read(webhook(item), KEY, "TestMerchant")
    assert told.idempotency_key is None and told.reply.body == b"[accepted]"
    assert told.refund_key == "TestPayment-1407325143704"
    assert told.result.outcome is ProviderOutcome.SUCCEEDED


@pytest.mark.parametrize(("event", "success"), [("REFUND", "false"), ("REFUND_FAILED", "true")])
def test_a_refused_or_failed_refund_is_a_refund_declined(event: str, success: str) -> None:
    item = signed(eventCode=event, success=success, reason="Insufficient balance")
    told = notifications.read(webhook(item), KEY, "TestMerchant")
    assert told.refund_key == "TestPayment-1407325143704"
    assert (told.result.outcome, told.result.raw_code) == (
        ProviderOutcome.DECLINED,
        "Insufficient balance",
    )


@pytest.mark.parametrize(
    "body",
    [
        webhook({**signed(), "merchantReference": "someone-else"}),  # tampered after signing
        webhook(signed(key="ab" * 32)),  # signed with another key
        webhook({k: v for k, v in signed().items() if k != "additionalData"}),  # unsigned
        webhook(signed(), {**signed(), "amount": {"value": 1, "currency": "EUR"}}),
        webhook(signed(merchantAccountCode="OtherMerchant")),  # another account
        b'{"notificationItems": []}',
        b"\xff not json",
    ],
)
def test_anything_that_does_not_verify_is_refused(body: bytes) -> None:
    with pytest.raises(ValueError):
        notifications.read(body, KEY, "TestMerchant")
