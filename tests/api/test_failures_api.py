"""What customers and checkouts read about a failure, over real HTTP."""

from __future__ import annotations

import httpx

from tests.api.conftest import Server
from tests.api.test_payments_api import BODY
from tests.helpers import WAIT_S


def declined(api: httpx.Client, code: str, **headers: str) -> dict:  # type: ignore[type-arg]
    body = {**BODY, "payment_token": f"sim_decline_{code}"}
    response = api.post("/v1/payments", json=body, headers=headers)
    assert response.status_code == 201
    return response.json()  # type: ignore[no-any-return]


def test_a_failed_payment_carries_a_localized_failure(api: httpx.Client) -> None:
    zh = declined(api, "insufficient_funds")["failure"]  # the customer's locale is zh-CN
    assert zh["code"] == "insufficient_funds" and zh["kind"] == "business"
    assert zh["category"] == "funds" and zh["action"] == "customer_action"
    assert zh["locale"] == "zh-CN" and "余额" in zh["title"]
    en = declined(api, "insufficient_funds", **{"Accept-Language": "en-US,en;q=0.9"})["failure"]
    assert en["locale"] == "en" and "funds" in en["title"].lower()
    assert en["raw_code"] == "INSUFFICIENT_FUNDS"


def test_the_fraud_decline_reads_as_a_plain_bank_decline(api: httpx.Client) -> None:
    failure = declined(api, "suspected_fraud", **{"Accept-Language": "en"})["failure"]
    text = " ".join([failure["title"], failure["message"], *failure["suggestions"]]).lower()
    assert "fraud" not in text and "bank" in text
    assert failure["code"] == "suspected_fraud"  # the merchant still sees the real code


def test_the_same_customer_failing_again_gets_new_advice(server: Server, api: httpx.Client) -> None:
    first = declined(api, "expired_card", **{"Accept-Language": "en"})["failure"]
    second = declined(api, "expired_card", **{"Accept-Language": "en"})["failure"]
    third = declined(api, "expired_card", **{"Accept-Language": "en"})["failure"]
    assert first["suggestions"] != second["suggestions"] != third["suggestions"]
    assert "customer service" in third["suggestions"][0]  # no support contact set: the fallback


def test_the_catalogue_and_help_pages_are_public(server: Server) -> None:
    catalogue = httpx.get(
        f"{server.url}/v1/failure-codes", params={"locale": "zh-CN"}, timeout=WAIT_S
    ).json()
    codes = {c["code"]: c for c in catalogue["data"]}
    assert catalogue["locale"] == "zh-CN" and len(codes) >= 30
    assert codes["provider_timeout"]["kind"] == "technical"
    assert codes["provider_timeout"]["counts_against_health"] is True
    assert codes["insufficient_funds"]["customer_message"]["title"]
    page = httpx.get(
        f"{server.url}/help/expired_card", headers={"Accept-Language": "zh-CN"}, timeout=WAIT_S
    )
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert '<html lang="zh-CN">' in page.text and "过期" in page.text
    english = httpx.get(f"{server.url}/help/expired_card", params={"locale": "en"}, timeout=WAIT_S)
    assert "expired" in english.text.lower()
    missing = httpx.get(f"{server.url}/help/no_such_code", timeout=WAIT_S)
    assert (
        missing.status_code == 404 and missing.json()["error"]["code"] == "failure_code_not_found"
    )


def test_the_help_url_leads_to_the_page(server: Server, api: httpx.Client) -> None:
    failure = declined(api, "do_not_honor")["failure"]
    assert failure["help_url"].startswith(server.url)
    assert httpx.get(failure["help_url"], timeout=WAIT_S).status_code == 200
