"""Emergency controls from the console over real HTTP on both databases: a preview that
counts the payments of the last hour, a confirmed form, an end time at which the control
lifts itself on the server's clock, the role, and every step audit-logged."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import httpx

from paymend.store import controls
from tests.api.test_payments_api import BODY
from tests.console.conftest import Console, form_token
from tests.console.test_pages import _pay, _text

HOLD = {
    "kind": "hold",
    "scope": "bank",
    "value": "ICBC",
    "amount_above": "1500",
    "currency": "cny",
    "ends_in": "15",
    "reason": "card testing wave at ICBC",
}


def _token(client: httpx.Client) -> str:
    return form_token(client.get("/console/health").text, "csrf")


def _preview(client: httpx.Client, form: dict[str, str], token: str) -> httpx.Response:
    return client.post("/console/controls/preview", data={**form, "csrf": token})


def _confirm(client: httpx.Client, preview: httpx.Response) -> httpx.Response:
    """Send the preview's own confirmation form, its box ticked."""
    hidden = re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', preview.text)
    fields = {name: html.unescape(value) for name, value in hidden}
    return client.post("/console/controls", data={**fields, "confirm": "yes"})


def test_a_hold_is_previewed_confirmed_and_lifts_itself_at_its_end(console: Console) -> None:
    for i in range(3):
        _pay(console, {**BODY, "order_id": f"o-{i}", "amount": 1000 + 600 * i})
    _pay(console, {**BODY, "order_id": "o-usd", "amount": 9000, "currency": "USD"})
    client = console.login(console.operator("ops-lin", "ops"))
    token = _token(client)
    preview = _preview(client, HOLD, token)
    assert preview.status_code == 200, preview.text
    assert re.findall(r"data-touched=\"\d+\"", preview.text) == [
        'data-touched="2"'
    ]  # 1500 is not above; USD is another currency
    assert "held 2 payments" in _text(preview)
    store = console.server.runtime.store
    assert store.run_sync(controls.active) == []  # a preview sets nothing

    unticked = client.post("/console/controls", data={**HOLD, "csrf": token})
    assert unticked.status_code == 400 and store.run_sync(controls.active) == []

    done = _confirm(client, preview)
    assert done.status_code == 303, done.text
    (hold,) = store.run_sync(controls.active)
    assert (hold.kind, hold.currency, hold.amount_above) == ("hold", "CNY", 1500)
    assert hold.ends_at == console.clock.now() + timedelta(minutes=15)
    page = client.get("/console/health").text
    assert 'data-control="hold bank:ICBC"' in page

    held = _pay(console, {**BODY, "order_id": "o-big", "amount": 5000})
    assert held["status"] == "held"
    console.clock.advance(15 * 60)  # its end: lifted, on the server's clock
    assert _pay(console, {**BODY, "order_id": "o-after", "amount": 5000})["status"] == "succeeded"
    assert 'data-control="hold bank:ICBC"' not in client.get("/console/health").text
    assert store.run_sync(controls.active) == []
    entries = store.run_sync(lambda c: controls.audit_entries(c, 2))
    assert [(e["action"], e["actor"]) for e in entries] == [
        ("control.hold.expire", "clock"),
        ("control.hold", "operator:ops-lin"),
    ]


def test_a_preview_counts_what_it_would_move_and_refuses_what_it_cannot_set(
    sqlite_console: Console,
) -> None:
    console = sqlite_console
    for i in range(2):
        _pay(console, {**BODY, "order_id": f"o-{i}"})  # both to sim_a, the first channel
    client = console.login(console.operator("ops-lin", "ops"))
    token = _token(client)
    form = {"scope": "channel", "method": "card", "ends_in": "60", "reason": "drill"}
    forced = _preview(client, {**form, "kind": "force_route", "value": "sim_b"}, token)
    assert 'data-touched="2"' in forced.text  # both went to sim_a first
    paused = _preview(client, {**form, "kind": "pause", "value": "sim_b"}, token)
    assert 'data-touched="0"' in paused.text  # none called sim_b

    pause = {"kind": "pause", "scope": "bank", "value": "CMB", "reason": "maintenance"}
    assert _preview(client, pause, token).status_code == 400  # no end
    late = _preview(client, {**pause, "ends_at": "2099-01-01T00:00"}, token)
    assert late.status_code == 400 and "at most 7 days" in _text(late)
    assert _preview(client, {**pause, "ends_in": "60", "reason": " "}, token).status_code == 400
    typo = _preview(client, {**pause, "ends_in": "60", "scope": "channel", "value": "sim_z"}, token)
    assert typo.status_code == 400 and "sim_z" in _text(typo)
    viewer = console.login(console.operator("vi-an", "viewer"))
    refused = viewer.post("/console/controls/preview", data=pause)
    assert refused.status_code == 403 and "needs ops" in _text(refused)
    assert console.server.runtime.store.run_sync(controls.active) == []

    client.cookies.set("paymend_console_locale", "zh-CN", path="/console")
    chinese = _preview(client, {**pause, "ends_in": "15", "reason": "维护"}, token)
    assert "过去一小时内它会拦下 0 笔支付" in _text(chinese)
