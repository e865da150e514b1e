"""Feedback from the merchant's checkout (POST /v1/feedback), and the pain-point report
that groups it with the status page's and the help centre's: the CLI and the console."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
from click.testing import CliRunner

from paymend.cli import main
from paymend.engine.feedback import build_report
from tests.console.conftest import Console
from tests.customers.conftest import Shop
from tests.helpers import NOW, count_rows


def post(shop: Shop, body: dict[str, Any], key: str | None = None) -> httpx.Response:
    with shop.server.client(key) as api:
        return api.post("/v1/feedback", json=body)


def test_the_checkout_sends_feedback_stored_masked_with_the_payments_context(
    shop: Shop,
) -> None:
    failed = shop.pay("sim_decline_insufficient_funds", "o-api-fb")
    sent = post(
        shop,
        {
            "payment_id": failed["id"],
            "rating": 1,
            "reasons": ["failed_again", "method_missing"],
            "text": "mail me at zhang.san@example.cn, id 110105194912310021",
            "step": "payment_form",
            "locale": "zh-CN",
        },
    )
    assert sent.status_code == 201, sent.text
    got = sent.json()
    assert got["object"] == "feedback" and got["id"].startswith("fb_")
    assert got["text"] == "mail me at z***@example.cn, id ***0021"
    assert got["reasons"] == ["failed_again", "method_missing"]
    assert got["step"] == "payment_form" and got["payment_id"] == failed["id"]


def test_bad_feedback_gets_a_machine_code_and_changes_nothing(shop: Shop) -> None:
    paid = shop.pay("sim_approve", "o-api-bad")
    before = count_rows(shop.server.runtime.store)
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"rating": 6}, 400, "rating"),
        ({"reasons": ["boring"]}, 400, "reasons.0"),
        ({"text": "x" * 1001}, 400, "text"),
        ({"step": "Bad Step", "rating": 3}, 400, "step"),
        ({}, 400, "rating"),  # nothing said
        ({"payment_id": "pay_nope", "rating": 3}, 404, "id"),
        ({"rating": 3, "text": "card 4242424242424242"}, 400, "text"),  # refused unread
    ]
    for body, status, param in cases:
        answer = post(
            shop,
            {"payment_id": paid["id"], **body} if "payment_id" not in body and body != {} else body,
        )
        assert answer.status_code == status, (body, answer.text)
        error = answer.json()["error"]
        assert error["code"] and error["param"] == param, (body, error)
    assert post(shop, {"rating": 3}, key="sk_wrong").status_code == 401
    assert count_rows(shop.server.runtime.store) == before


def test_the_report_groups_by_what_hurt_with_the_trend_and_examples() -> None:
    start, end = NOW, NOW + timedelta(days=7)

    def row(at: Any, code: str, **more: Any) -> dict[str, Any]:
        base = {"created_at": at, "failure_code": code, "channel": "sim_a", "method": "card"}
        base |= {"bank": "ICBC", "step": "status_page", "rating": None, "helpful": None}
        return base | {"reasons": [], "text": ""} | more

    rows = [
        row(
            NOW + timedelta(days=6),
            "insufficient_funds",
            rating=1,
            text="again",
            reasons=["failed_again"],
        ),
        row(NOW + timedelta(days=5), "insufficient_funds", helpful=False, text="older"),
        row(NOW + timedelta(days=4), "expired_card", rating=5, bank=""),
        row(NOW - timedelta(days=1), "expired_card"),  # the week before
        row(NOW - timedelta(days=2), "expired_card"),
    ]
    report = build_report(rows, start, end, examples=1)
    assert (report.total, report.before) == (3, 2)
    codes = report.by["failure_code"]
    assert [(g.value, g.count, g.trend, g.unhappy) for g in codes] == [
        ("insufficient_funds", 2, 2, 2),
        ("expired_card", 1, -1, 0),
    ]
    assert codes[0].examples == ["again"] and codes[0].reasons["failed_again"] == 1
    assert {g.value: g.count for g in report.by["bank"]} == {"ICBC": 2, "-": 1}


def test_feedback_reaches_the_cli_report_and_the_console_page(shop: Shop) -> None:
    failed = shop.pay("sim_decline_expired_card", "o-report")
    for rating in (1, 2):
        assert (
            post(
                shop, {"payment_id": failed["id"], "rating": rating, "text": "where is my bank?"}
            ).status_code
            == 201
        )
    env = {"PAYMEND_DATABASE_URL": shop.server.runtime.settings.database_url}
    # the CLI reads the wall clock, the server the test's (March 2026): a year covers it
    runner = CliRunner()
    text = runner.invoke(main, ["feedback", "report", "--days", "366"], env=env)
    assert text.exit_code == 0, text.output
    assert "By failure code:" in text.output and "expired_card" in text.output
    dumped = json.loads(
        runner.invoke(main, ["feedback", "report", "--days", "366", "--json"], env=env).output
    )
    expired = next(g for g in dumped["by"]["failure_code"] if g["value"] == "expired_card")
    assert expired["count"] >= 2 and expired["unhappy"] >= 2

    console = Console(shop.server, shop.clock)
    console.operator("sup-fb", "support")
    support = console.login("sup-fb")
    page = support.get("/console/feedback")
    assert page.status_code == 200
    table = page.text[page.text.index('data-dimension="failure_code"') :]
    row = table[table.index('data-value="expired_card"') :]
    assert "<td data-count>" in row and "where is my bank?" in row
    # the console's menu leads there, marked as the page one is on
    assert '<a href="/console/feedback" aria-current="page">Feedback</a>' in page.text
    assert '<a href="/console/feedback" >Feedback</a>' in support.get("/console/payments").text
    # in 简体中文, every heading in the console's words
    support.cookies.set("paymend_console_locale", "zh-CN")
    zh = support.get("/console/feedback").text
    support.close()
    assert '<a href="/console/feedback" aria-current="page">顾客反馈</a>' in zh
    for words in ("<h1>顾客反馈</h1>", "<h2>按失败原因</h2>", "<h2>按银行</h2>", "<th>不满意</th>"):
        assert words in zh
    assert "最近 7 天：" in zh and "By failure code" not in zh
    # a viewer may not read customers' words: no link to a page that would refuse them
    console.operator("view-fb", "viewer")
    viewer = console.login("view-fb")
    assert "/console/feedback" not in viewer.get("/console/health").text
    assert viewer.get("/console/feedback").status_code == 403
    viewer.close()
