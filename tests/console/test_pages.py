"""The console's pages over real HTTP on both databases: live health with a badge per
channel, the payments search and a failed payment's timeline, the language switch."""

from __future__ import annotations

import asyncio
import html
import re
from typing import Any

import httpx

from paymend.config import ConsoleConfig
from paymend.console.health import badge
from paymend.store import controls
from tests.api.test_payments_api import BODY
from tests.console.conftest import Console, form_token

DECLINED = {**BODY, "order_id": "order-declined", "payment_token": "sim_decline_do_not_honor"}


def _pay(console: Console, body: dict[str, Any]) -> dict[str, Any]:
    with console.server.client() as api:
        answer = api.post("/v1/payments", json=body)
        assert answer.status_code == 201, answer.text
        paid: dict[str, Any] = answer.json()
        return paid


def _text(page: httpx.Response) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.text)))


def test_the_badge_follows_the_configured_thresholds() -> None:
    config = ConsoleConfig(healthy=0.98, degraded=0.95)
    assert [badge(r, config) for r in (None, 1.0, 0.981, 0.98, 0.951, 0.95, 0.2)] == [
        "idle", "healthy", "healthy", "degraded", "degraded", "failing", "failing",
    ]  # fmt: skip
    strict = ConsoleConfig(healthy=0.999, degraded=0.99)
    assert badge(0.995, strict) == "degraded"


def test_the_health_page_shows_each_channel_with_its_badge_and_figures(
    console: Console,
) -> None:
    for i in range(4):
        _pay(console, {**BODY, "order_id": f"order-{i}"})
    client = console.login(console.operator("ops-lin", "ops"))
    page = client.get("/console/health")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    channels = re.findall(r'data-channel="(\w+)"', page.text)
    assert channels == ["sim_a", "sim_b"]
    badges = re.findall(r'data-badge="(\w+)"', page.text)
    assert badges[:2] == ["healthy", "idle"]  # sim_a took the four, sim_b none
    sim_a = page.text.split('data-channel="sim_a"')[1].split("</tbody>")[0]
    assert "100.0%" in sim_a and ">4<" in sim_a  # success rate and calls
    assert "bank=ICBC" in page.text  # the scopes within the channel
    # the panel htmx swaps in every few seconds is the same figures alone
    live = client.get("/console/health/live")
    assert live.status_code == 200 and "<html" not in live.text
    assert re.findall(r'data-badge="(\w+)"', live.text)[:2] == ["healthy", "idle"]


def test_the_health_page_shows_each_bank_and_region_across_every_channel(
    sqlite_console: Console,
) -> None:
    """A bank whose cards fail on both channels is failing as a bank, whichever channel
    took them; another bank of the same channels stays healthy."""
    console = sqlite_console
    for i in range(3):
        broken = {**BODY, "order_id": f"icbc-{i}", "payment_token": "sim_error_system_error"}
        _pay(console, broken)
        _pay(console, {**BODY, "order_id": f"cmb-{i}", "bank": "CMB", "region": "CN-North"})
    client = console.login(console.operator("vera", "viewer"))
    across = client.get("/console/health").text.split('id="across"')[1].split("</details>")[0]
    scopes = re.findall(r'<tr data-scope="([^"]+)">.*?data-badge="(\w+)"', across)
    assert scopes[0] == ("bank=ICBC", "failing")  # worst first
    assert ("bank=CMB", "healthy") in scopes and ("region=CN-North", "healthy") in scopes
    icbc = across.split('data-scope="bank=ICBC"')[1].split("</tr>")[0]
    calls = int(re.findall(r"<td>(\d+)</td>", icbc)[-1])
    assert calls > 3  # every call of its payments, on sim_a and on sim_b


def test_the_chart_series_counts_each_call_once(console: Console) -> None:
    for i in range(3):
        _pay(console, {**BODY, "order_id": f"order-{i}"})
    client = console.login(console.operator("ops-lin", "ops"))
    data = client.get("/console/health/series.json").json()
    assert len(data["x"]) == 60 and data["x"] == sorted(data["x"])
    assert sum(data["channels"]["sim_a"]["calls"]) == 3
    assert sum(data["channels"]["sim_b"]["calls"]) == 0
    assert [r for r in data["channels"]["sim_a"]["success"] if r is not None] == [100.0]


def test_a_failed_payment_is_found_by_order_id_and_its_timeline_told(console: Console) -> None:
    _pay(console, BODY)
    failed = _pay(console, DECLINED)
    assert failed["status"] == "failed"
    client = console.login(console.operator("cs-wang", "support"))
    found = client.get("/console/payments", params={"order_id": "order-declined"})
    assert found.status_code == 200
    assert re.findall(r'href="/console/payments/(pay_\w+)"', found.text) == [failed["id"]]
    page = client.get(f"/console/payments/{failed['id']}")
    assert page.status_code == 200
    text = _text(page)
    attempt = failed["attempts"][0]
    assert f"Attempt 1 on {attempt['provider']}: failed" in text
    assert attempt["raw_code"] in text and attempt["unified_code"] in text
    assert attempt["reason"] in text and attempt["trace_id"] in text
    # what the customer read, in their locale (zh-CN), as the API told the checkout
    assert "What the customer was told (zh-CN)" in text
    assert failed["failure"]["title"] in text
    # reading customers' payments is audit-logged as the operator
    entries = console.server.runtime.store.run_sync(lambda c: controls.audit_entries(c, 5))
    assert (entries[0]["action"], entries[0]["actor"], entries[0]["target"]) == (
        "payment.lookup",
        "operator:cs-wang",
        f"payment:{failed['id']}",
    )
    # the search by status and failure code finds it, and only it
    by_code = client.get(
        "/console/payments",
        params={"status": "failed", "failure_code": failed["failure"]["code"]},
    )
    assert re.findall(r'href="/console/payments/(pay_\w+)"', by_code.text) == [failed["id"]]
    missing = client.get("/console/payments/pay_nope")
    assert missing.status_code == 404 and "No payment pay_nope" in missing.text


def test_a_payment_id_search_goes_to_its_page(console: Console) -> None:
    paid = _pay(console, BODY)
    client = console.login(console.operator("cs-wang", "support"))
    answer = client.get("/console/payments", params={"payment_id": paid["id"]})
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/console/payments/{paid['id']}"


def test_pausing_a_bank_shows_in_the_health_page_and_resuming_ends_it(console: Console) -> None:
    client = console.login(console.operator("ops-lin", "ops"))
    token = form_token(client.get("/console/health").text, "csrf")
    done = client.post(
        "/console/controls",
        data={
            **{"kind": "pause", "scope": "bank", "value": "CMB", "ends_in": "60"},
            **{"reason": "bank maintenance", "confirm": "yes", "csrf": token},
        },
    )
    assert done.status_code == 303
    page = client.get(done.headers["location"])
    assert 'data-control="pause bank:CMB"' in page.text and "bank maintenance" in page.text
    (control,) = console.server.runtime.store.run_sync(controls.active)
    assert control.set_by == "operator:ops-lin"
    ended = client.post(
        f"/console/controls/{control.id}/end", data={"reason": "bank is back", "csrf": token}
    )
    assert ended.status_code == 303
    assert 'data-control="pause bank:CMB"' not in client.get("/console/health").text
    entries = console.server.runtime.store.run_sync(lambda c: controls.audit_entries(c, 2))
    assert [(e["action"], e["actor"], e["reason"]) for e in entries] == [
        ("control.pause.end", "operator:ops-lin", "bank is back"),
        ("control.pause", "operator:ops-lin", "bank maintenance"),
    ]


def test_the_language_switch_is_kept_in_a_cookie(console: Console) -> None:
    client = console.login(console.operator("ops-lin", "ops"))
    assert "Live health" in client.get("/console/health").text
    switched = client.get("/console/locale/zh-CN", params={"next": "/console/health"})
    assert switched.status_code == 303 and switched.headers["location"] == "/console/health"
    page = client.get("/console/health")
    assert '<html lang="zh-CN">' in page.text and "实时健康状况" in page.text
    # a language we do not have changes nothing; Accept-Language decides without a cookie
    client.get("/console/locale/xx")
    assert "实时健康状况" in client.get("/console/health").text
    fresh = console.browser()
    login = fresh.get("/console/login", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert "登录" in login.text


def test_support_refunds_part_of_a_payment_confirmed_and_audited(console: Console) -> None:
    paid = _pay(console, BODY)
    client = console.login(console.operator("cs-wang", "support"))
    page = client.get(f"/console/payments/{paid['id']}")
    token = form_token(page.text, "csrf")
    url = f"/console/payments/{paid['id']}/refund"
    unconfirmed = client.post(url, data={"amount": "500", "reason": "late", "csrf": token})
    assert unconfirmed.status_code == 400 and "confirm" in unconfirmed.text
    bad = client.post(url, data={"amount": "-5", "reason": "late", "confirm": "yes", "csrf": token})
    assert bad.status_code == 400
    too_much = client.post(
        url, data={"amount": "999999", "reason": "late", "confirm": "yes", "csrf": token}
    )
    assert too_much.status_code == 400  # the engine's own refusal, shown
    assert (
        console.server.runtime.store.run_sync(
            lambda c: controls.audit_entries(c, 1, target=f"payment:{paid['id']}")
        )[0]["action"]
        == "payment.lookup"
    )  # nothing refunded yet
    done = client.post(
        url, data={"amount": "500", "reason": "parcel late", "confirm": "yes", "csrf": token}
    )
    assert done.status_code == 303, done.text
    after = client.get(done.headers["location"])
    text = _text(after)
    assert "5.00 CNY" in text and "parcel late" in text
    assert "cs-wang" in text and "payment.refund" in text  # the operator's action
    with console.server.client() as api:
        refunds = api.get(f"/v1/payments/{paid['id']}/refunds").json()["data"]
    assert [(r["amount"], r["reason"]) for r in refunds] == [(500, "parcel late")]
    entry = console.server.runtime.store.run_sync(
        lambda c: controls.audit_entries(c, 5, target=f"payment:{paid['id']}")
    )
    refunded = next(e for e in entry if e["action"] == "payment.refund")
    assert refunded["actor"] == "operator:cs-wang" and refunded["reason"] == "parcel late"
    assert refunded["details"]["amount"] == 500


def test_a_viewer_cannot_refund(console: Console) -> None:
    paid = _pay(console, BODY)
    client = console.login(console.operator("vera", "viewer"))
    token = form_token(client.get("/console/health").text, "csrf")
    refused = client.post(
        f"/console/payments/{paid['id']}/refund",
        data={"amount": "500", "reason": "x", "confirm": "yes", "csrf": token},
    )
    assert refused.status_code == 403


def test_the_last_hours_count_declines_as_the_payers_and_errors_as_the_channels(
    console: Console,
) -> None:
    for i in range(3):
        _pay(console, {**BODY, "order_id": f"order-{i}"})
    _pay(console, DECLINED)  # a business decline: the channel worked
    console.clock.advance(2 * 3600)  # out of the last hour, inside the last six
    _pay(console, {**BODY, "order_id": "order-9", "payment_token": "sim_error_system_error"})
    client = console.login(console.operator("ops-lin", "ops"))
    panel = client.get("/console/health/hours")
    assert panel.status_code == 200
    rows = panel.text.split('data-hours="sim_a"')[1].split("</tbody>")[0]
    cells = [re.findall(r"<td>([^<]*)</td>", r) for r in rows.split("<tr>")[1:]]
    # window, success, errors, p50, p99, calls
    assert [(c[0], c[1], c[2], c[5]) for c in cells] == [
        ("1h", "0.0%", "100.0%", "1"),
        ("6h", "75.0%", "25.0%", "5"),
        ("24h", "75.0%", "25.0%", "5"),
    ]


def test_ops_release_and_reject_held_payments_from_their_pages(console: Console) -> None:
    runtime = console.server.runtime
    asyncio.run(
        runtime.service.controls.set(
            "hold", "bank", "CMB", None, "review large payments", "operator:lead",
            runtime.known, 100_00, "CNY",
        )
    )  # fmt: skip
    large = {**BODY, "bank": "CMB", "amount": 500_00}
    first, second = (_pay(console, {**large, "order_id": f"o-h{i}"}) for i in (1, 2))
    assert first["status"] == second["status"] == "held"
    support = console.login(console.operator("cs-wang", "support"))
    assert "Release: charge it now" not in support.get(f"/console/payments/{first['id']}").text
    client = console.login(console.operator("ops-lin", "ops"))
    page = client.get(f"/console/payments/{first['id']}")
    assert "Release: charge it now" in page.text
    token = form_token(page.text, "csrf")
    released = client.post(
        f"/console/payments/{first['id']}/release",
        data={"reason": "customer verified", "csrf": token},
    )
    assert released.status_code == 303
    assert "Released: the payment is succeeded." in _text(client.get(released.headers["location"]))
    rejected = client.post(
        f"/console/payments/{second['id']}/reject", data={"reason": "no answer", "csrf": token}
    )
    assert rejected.status_code == 303
    twice = client.post(
        f"/console/payments/{second['id']}/release", data={"reason": "r", "csrf": token}
    )
    assert twice.status_code == 409
    entries = runtime.store.run_sync(lambda c: controls.audit_entries(c, 10))
    decided = [
        (e["action"], e["actor"])
        for e in entries
        if e["action"] in ("payment.release", "payment.reject")
    ]
    assert decided == [
        ("payment.reject", "operator:ops-lin"),
        ("payment.release", "operator:ops-lin"),
    ]


def test_support_grants_a_compensation_on_a_failed_payment_within_the_cap(
    console: Console,
) -> None:
    failed = _pay(console, DECLINED)
    paid = _pay(console, BODY)  # at once, first try: nothing to make up for
    client = console.login(console.operator("cs-wang", "support"))
    token = form_token(client.get(f"/console/payments/{failed['id']}").text, "csrf")
    grant = {"kind": "coupon", "amount": "300", "reason": "sorry", "confirm": "yes", "csrf": token}
    refused = client.post(f"/console/payments/{paid['id']}/compensate", data=grant)
    assert refused.status_code == 409 and "first try" in refused.text
    over = client.post(
        f"/console/payments/{failed['id']}/compensate", data={**grant, "amount": "999999"}
    )
    assert over.status_code in (400, 409)  # above the merchant's cap
    done = client.post(f"/console/payments/{failed['id']}/compensate", data=grant)
    assert done.status_code == 303, done.text
    text = _text(client.get(done.headers["location"]))
    assert "Compensation coupon: 3.00 CNY by operator:cs-wang" in text


def test_the_failure_catalogue_is_browsable_in_the_operators_language(
    console: Console,
) -> None:
    client = console.login(console.operator("vera", "viewer"))
    listed = client.get("/console/failures")
    assert listed.status_code == 200
    codes = re.findall(r'data-code="(\w+)"', listed.text)
    catalogue = console.server.runtime.service.classifier.catalogue
    assert codes == catalogue.codes()
    one = client.get("/console/failures/insufficient_funds")
    text = _text(one)
    assert "business: the payer's, card's or bank's" in text
    assert "Counts against the channel's health no" in text
    client.get("/console/locale/zh-CN")
    chinese = _text(client.get("/console/failures/insufficient_funds"))
    assert "客户看到的提示 (zh-CN)" in chinese
    assert client.get("/console/failures/no_such_code").status_code == 404
