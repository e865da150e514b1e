"""The customer's payment status page over HTTP: what it says for each state, in the
customer's language, what it never says, and the clear page a bad link gets."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from urllib.parse import urlsplit

from paymend.store import feedback as feedback_repo
from tests.customers.conftest import LINK_KEY, Shop
from tests.helpers import NOW


def path_of(status_url: str) -> str:
    parts = urlsplit(status_url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def test_the_payment_answer_carries_a_link_to_a_page_in_the_customers_language(
    shop: Shop,
) -> None:
    paid = shop.pay("sim_approve", "o-paid")
    assert paid["status_url"].startswith(f"{shop.url}/pay/")
    assert paid["status_url"].endswith("?lang=zh-CN")  # the customer's locale
    with shop.browser() as browser:
        page = browser.get(path_of(paid["status_url"]))
        english = browser.get(urlsplit(paid["status_url"]).path, headers={"Accept-Language": "en"})
    assert page.status_code == 200 and '<html lang="zh-CN">' in page.text
    assert 'data-state="succeeded"' in page.text and "支付成功" in page.text
    assert "o-paid" in page.text and "19.99 CNY" in page.text  # 1999 fen, exactly
    assert "hx-trigger" not in page.text  # nothing to wait for
    # the token stays off other sites' logs and out of caches and search engines
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store" and "noindex" in page.text
    assert '<html lang="en">' in english.text and "Payment received" in english.text


def test_a_failed_payment_says_why_and_offers_another_method_help_and_support(
    shop: Shop,
) -> None:
    failed = shop.pay("sim_decline_expired_card", "o/exp 1")
    with shop.browser() as browser:
        page = browser.get(path_of(failed["status_url"])).text
    assert 'data-state="failed"' in page and "未支付" in page
    assert failed["customer_message"]["title"] in page  # the failure's own words
    assert 'href="https://shop.example/checkout?order=o%2Fexp%201"' in page
    assert 'href="/help/expired_card?lang=zh-CN"' in page
    assert 'href="mailto:help@shop.example"' in page
    for hidden in ("EXPIRED_CARD", "sim_a", "tok_visa", "card expired"):  # raw answers
        assert hidden not in page


def test_a_fraud_decline_reads_as_the_generic_decline(shop: Shop) -> None:
    blocked = shop.pay("sim_decline_suspected_fraud", "o-blocked")
    with shop.browser() as browser:
        page = browser.get(urlsplit(blocked["status_url"]).path, params={"lang": "en"}).text
    assert "/help/generic_decline?lang=en" in page and "declined" in page
    for leaked in ("fraud", "suspected", "stolen"):
        assert leaked not in page.lower()


def test_a_processing_page_polls_and_shows_the_result_once_the_worker_settles_it(
    shop: Shop,
) -> None:
    waiting = shop.pay("sim_timeout_charged", "o-wait")
    assert waiting["status"] == "processing"
    path = urlsplit(waiting["status_url"]).path
    with shop.browser() as browser:
        page = browser.get(path, params={"lang": "en"}).text
        assert 'data-state="processing"' in page and "do not pay again" in page.lower()
        assert f'hx-get="{path}/state?lang=en"' in page and 'hx-trigger="every 2s"' in page
        assert 'http-equiv="refresh"' in page  # without JavaScript too
        for _ in range(10):  # the worker's status queries, as many as it takes, bounded
            shop.clock.advance(60)
            asyncio.run(shop.server.runtime.worker.sweep())
            panel = browser.get(f"{path}/state", params={"lang": "en"}).text
            if 'data-state="processing"' not in panel:
                break
    assert 'data-state="succeeded"' in panel and "hx-trigger" not in panel


def test_a_tampered_or_expired_link_gets_a_clear_page(shop: Shop) -> None:
    paid = shop.pay("sim_approve", "o-link")
    path = urlsplit(paid["status_url"]).path
    token = path.removeprefix("/pay/")
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    with shop.browser() as browser:
        tampered = browser.get(f"/pay/{flipped}", params={"lang": "en"})
        garbage = browser.get("/pay/not-a-token", headers={"Accept-Language": "zh-CN"})
        shop.clock.advance(86400 + 1)  # customers.link_ttl: 1d
        expired = browser.get(path, params={"lang": "en"})
        shop.clock.advance(-86400 - 1)
    assert tampered.status_code == 404 and "text/html" in tampered.headers["content-type"]
    assert "This link does not work" in tampered.text and "o-link" not in tampered.text
    assert garbage.status_code == 404 and "此链接无效" in garbage.text
    assert expired.status_code == 410 and "This link has expired" in expired.text
    assert LINK_KEY not in tampered.text + expired.text


def test_feedback_on_the_page_is_stored_masked_and_card_numbers_are_refused(
    shop: Shop,
) -> None:
    failed = shop.pay("sim_decline_insufficient_funds", "o-fb")
    path = urlsplit(failed["status_url"]).path
    form = {
        "rating": "2",
        "reason_failed_again": "failed_again",
        "reason_unclear_message": "unclear_message",
        "text": "call me on +86 138 1234 5678 or li.wei@example.com",
    }
    with shop.browser() as browser:
        sent = browser.post(f"{path}/feedback?lang=en", data=form)
        thanks = browser.get(sent.headers["location"])
        card = browser.post(
            f"{path}/feedback?lang=en", data={**form, "text": "my card 4242 4242 4242 4242"}
        )
    assert sent.status_code == 303 and "Thank you" in thanks.text
    assert card.status_code == 400 and "card numbers" in card.text
    rows = [
        r
        for r in shop.server.runtime.store.run_sync(
            lambda c: feedback_repo.since(c, NOW, shop.clock.now() + timedelta(seconds=1))
        )
        if r["payment_id"] == failed["id"]
    ]
    assert len(rows) == 1  # the refused one stored nothing
    row = rows[0]
    assert row["rating"] == 2 and row["reasons"] == ["failed_again", "unclear_message"]
    assert row["text"] == "call me on ***5678 or l***@example.com"
    assert (row["failure_code"], row["method"], row["bank"], row["step"]) == (
        "insufficient_funds",
        "card",
        "ICBC",
        "status_page",
    )
    assert row["channel"] == failed["attempts"][-1]["provider"]
