"""The customers' pages in a real browser (Debian's chromium through playwright, the
console's browser set-up): a processing payment's page turns to succeeded by itself
when the worker settles it; a failed payment's page in 简体中文 offers another method
and the right help article, and the feedback sent there reaches the report; a tampered
or expired link gets a clear page in the reader's language, not an error. With
PAYMEND_CONSOLE_SCREENSHOTS=<folder> the screenshots docs/customers.md shows are saved
there. The worker and the store are run on the server's own event loop (Shop.on_server)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, expect

from paymend.domain.status_links import sign
from paymend.engine.feedback import report
from tests.console.test_browser import chromium, shot
from tests.customers.conftest import LINK_KEY, Shop


@pytest.fixture(scope="module")
def browser(shop: Shop) -> Iterator[Browser]:
    """Started after the shop's server (see `chromium`)."""
    with chromium() as launched:
        yield launched


@pytest.fixture
def zh_page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(locale="zh-CN", viewport={"width": 800, "height": 900})
    yield context.new_page()
    context.close()


@pytest.fixture
def en_page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(locale="en-US", viewport={"width": 800, "height": 900})
    yield context.new_page()
    context.close()


def test_a_processing_page_turns_to_succeeded_when_the_worker_settles_it(
    shop: Shop, en_page: Page
) -> None:
    waiting = shop.pay("sim_timeout_charged", "order-5150", customer={"locale": "en"})
    en_page.goto(waiting["status_url"])
    state = en_page.locator("#state")
    expect(state).to_have_attribute("data-state", "processing")
    expect(state).to_contain_text("Please do not pay again")
    shot(en_page, "customer-processing.png")
    runtime = shop.server.runtime
    for _ in range(10):  # the worker's status queries, as many as it takes, bounded
        shop.clock.advance(60)
        shop.on_server(runtime.presence.tick())  # the heartbeat at the moved clock
        shop.on_server(runtime.worker.sweep())
        if shop.on_server(runtime.service.get(waiting["id"])).payment.status.value != "processing":
            break
    # no reload: the page's own poll (htmx, every 2 s) brings the result
    expect(state).to_have_attribute("data-state", "succeeded", timeout=8000)
    expect(state).to_contain_text("Payment received")
    shot(en_page, "customer-succeeded.png")


def test_a_failed_payment_in_chinese_offers_another_method_help_and_feedback(
    shop: Shop, zh_page: Page
) -> None:
    failed = shop.pay("sim_decline_insufficient_funds", "order-8848")
    zh_page.goto(failed["status_url"])
    state = zh_page.locator("#state")
    expect(state).to_have_attribute("data-state", "failed")
    expect(state).to_contain_text("19.99 CNY")
    pay_again = zh_page.get_by_role("link", name="换一种方式重新支付")
    expect(pay_again).to_have_attribute("href", "https://shop.example/checkout?order=order-8848")
    zh_page.get_by_role("checkbox", name="再次支付仍失败").check()
    zh_page.get_by_label("1 分（满分 5 分）").check()
    zh_page.get_by_label("还有其他想说的吗？").fill("余额够的，为什么失败？电话 13812345678")
    shot(zh_page, "customer-failed-zh.png")
    zh_page.get_by_role("button", name="提交").click()
    expect(zh_page.get_by_role("status")).to_have_text("感谢您的反馈，我们会认真阅读每一条。")

    zh_page.get_by_role("link", name="了解详情").click()
    expect(zh_page).to_have_url(f"{shop.url}/help/insufficient_funds?lang=zh-CN")
    expect(zh_page.get_by_role("heading", level=1)).to_have_text(
        failed["customer_message"]["title"]
    )
    shot(zh_page, "customer-help-article-zh.png")
    zh_page.get_by_role("link", name="全部帮助主题").click()
    zh_page.get_by_label("搜索帮助中心").fill("余额")
    zh_page.get_by_role("button", name="搜索").click()
    expect(zh_page.locator("#results a").first).to_have_attribute(
        "href", "/help/insufficient_funds?lang=zh-CN"
    )
    shot(zh_page, "customer-help-search-zh.png")

    # the report the team reads: the feedback is there, masked
    found = shop.on_server(report(shop.server.runtime.store, shop.clock.now(), 7))
    group = next(g for g in found.by["failure_code"] if g.value == "insufficient_funds")
    assert group.reasons["failed_again"] >= 1
    assert "余额够的，为什么失败？电话 ***5678" in group.examples

    token = urlsplit(failed["status_url"]).path.removeprefix("/pay/")
    tampered = zh_page.goto(f"{shop.url}/pay/{token[:-3]}xyz")
    assert tampered is not None and tampered.status == 404
    expect(zh_page.get_by_role("alert")).to_contain_text("此链接无效")
    shot(zh_page, "customer-bad-link-zh.png")
    # the same payment's link, signed by the shop's key, a second past its expiry
    stale = sign(LINK_KEY.encode(), failed["id"], shop.clock.now() - timedelta(seconds=1))
    expired = zh_page.goto(f"{shop.url}/pay/{stale}")
    assert expired is not None and expired.status == 410
    expect(zh_page.get_by_role("alert")).to_contain_text("此链接已过期")
    expect(zh_page.get_by_role("heading", level=1)).to_have_text("无法显示此支付")
    expect(zh_page.locator("#state")).to_have_count(0)  # nothing of the payment shows
