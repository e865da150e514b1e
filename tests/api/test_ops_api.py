"""Operators pause and resume channels, banks and regions, hold and review payments;
every action is audited under the operator's own name; bad controls change nothing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from paymend.config import PaymendConfig, Settings
from paymend.engine.runtime import build_runtime
from tests.api.conftest import CONFIG, Server, running, running_on
from tests.api.test_payments_api import BODY
from tests.helpers import NOW, WAIT_S, ManualClock, count_rows, make_operator

# these servers run on the wall clock: a control ends a day after the tests began
ENDS_AT = (datetime.now(UTC) + timedelta(days=1)).isoformat()


@pytest.fixture
def ops(server: Server) -> Iterator[httpx.Client]:
    key = make_operator(server.runtime.store, "ops-lin", "ops")
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=WAIT_S
    ) as c:
        yield c


def test_pausing_a_channel_reroutes_and_resuming_restores(
    server: Server, api: httpx.Client, ops: httpx.Client
) -> None:
    paused = ops.post(
        "/v1/ops/controls",
        json={
            "kind": "pause",
            "ends_at": ENDS_AT,
            "scope": "channel",
            "value": "sim_a",
            "reason": "acquirer incident",
        },
    )
    assert paused.status_code == 201, paused.text
    payment = api.post("/v1/payments", json=BODY).json()
    assert payment["status"] == "succeeded"
    assert [a["provider"] for a in payment["attempts"]] == ["sim_b"]
    assert "paused by ops" in payment["attempts"][0]["reason"]
    ended = ops.post(
        f"/v1/ops/controls/{paused.json()['id']}/end",
        json={"reason": "acquirer fixed"},
    )
    assert ended.status_code == 200
    again = api.post("/v1/payments", json={**BODY, "order_id": "order-1002"}).json()
    assert [a["provider"] for a in again["attempts"]] == ["sim_a"]
    audit = ops.get("/v1/ops/audit").json()["data"]
    assert [(e["action"], e["actor"], e["target"]) for e in audit] == [
        ("control.pause.end", "operator:ops-lin", "channel:sim_a"),
        ("control.pause", "operator:ops-lin", "channel:sim_a"),
    ]
    assert audit[1]["reason"] == "acquirer incident"


def test_a_paused_bank_holds_its_payments_processing_and_calls_nobody(
    server: Server, api: httpx.Client, ops: httpx.Client
) -> None:
    ops.post(
        "/v1/ops/controls",
        json={
            "kind": "pause",
            "ends_at": ENDS_AT,
            "scope": "bank",
            "value": "ICBC",
            "method": "card",
            "reason": "bank maintenance",
        },
    )
    waiting = api.post("/v1/payments", json=BODY, headers={"Accept-Language": "en"}).json()
    assert waiting["status"] == "processing" and waiting["attempts"] == []
    assert waiting["failure"] is None
    assert "do not pay again" in waiting["customer_message"]["message"].lower()
    assert server.runtime.simulators["sim_a"].calls == 0  # it waits for the pause to end
    other_bank = api.post(
        "/v1/payments", json={**BODY, "bank": "CMB", "order_id": "order-1003"}
    ).json()
    assert other_bank["status"] == "succeeded"
    wallet = api.post(
        "/v1/payments", json={**BODY, "method": "alipay", "order_id": "order-1002"}
    ).json()
    assert wallet["status"] == "succeeded"  # the pause was for cards only


def test_forcing_a_route(api: httpx.Client, ops: httpx.Client) -> None:
    ops.post(
        "/v1/ops/controls",
        json={
            "kind": "force_route",
            "ends_at": ENDS_AT,
            "scope": "channel",
            "value": "sim_b",
            "method": "card",
            "reason": "cheaper today",
        },
    )
    payment = api.post("/v1/payments", json=BODY).json()
    assert payment["attempts"][0]["provider"] == "sim_b"


def test_bad_controls_change_nothing(server: Server, ops: httpx.Client) -> None:
    before = count_rows(server.runtime.store)
    cases = [
        (
            {
                "kind": "force_route",
                "ends_at": ENDS_AT,
                "scope": "bank",
                "value": "ICBC",
                "reason": "x",
            },
            "control_invalid",
        ),
        (
            {
                "kind": "pause",
                "ends_at": ENDS_AT,
                "scope": "channel",
                "value": "sim_z",
                "reason": "x",
            },
            "channel_unknown",
        ),
        (
            {
                "kind": "pause",
                "ends_at": ENDS_AT,
                "scope": "channel",
                "value": "sim_a",
                "reason": "",
            },
            "parameter_invalid",
        ),
        (
            {"kind": "pause", "ends_at": ENDS_AT, "scope": "channel", "value": "sim_a"},
            "parameter_missing",
        ),
    ]
    for body, code in cases:
        response = ops.post("/v1/ops/controls", json=body)
        assert response.status_code == 400 and response.json()["error"]["code"] == code, body
    missing = ops.post("/v1/ops/controls/ctl_nope/end", json={"reason": "x"})
    assert missing.status_code == 404
    assert count_rows(server.runtime.store) == before


def test_a_holds_amount_is_an_integer_never_a_boolean(server: Server, ops: httpx.Client) -> None:
    """`"amount_above": true` once held every payment above 1 minor unit."""
    before = count_rows(server.runtime.store)
    hold = {
        "kind": "hold",
        "ends_at": ENDS_AT,
        "scope": "bank",
        "value": "CMB",
        "currency": "CNY",
        "reason": "x",
    }
    for above in (True, "1000", 1000.0):
        refused = ops.post("/v1/ops/controls", json={**hold, "amount_above": above})
        assert refused.status_code == 400, (above, refused.text)
        assert refused.json()["error"]["param"] == "amount_above"
    assert count_rows(server.runtime.store) == before


def test_held_payments_wait_in_the_queue_until_ops_release_or_reject(
    server: Server, api: httpx.Client, ops: httpx.Client
) -> None:
    hold = ops.post(
        "/v1/ops/controls",
        json={
            "kind": "hold",
            "ends_at": ENDS_AT,
            "scope": "bank",
            "value": "CMB",
            "amount_above": 100_00,
            "currency": "CNY",
            "reason": "CMB errors: review large payments",
        },
    )
    assert hold.status_code == 201, hold.text
    assert hold.json()["amount_above"] == 100_00
    large = {**BODY, "bank": "CMB", "amount": 500_00}
    first = api.post("/v1/payments", json={**large, "order_id": "o-h1"}).json()
    second = api.post("/v1/payments", json={**large, "order_id": "o-h2"}).json()
    assert first["status"] == "held" and first["attempts"] == []
    assert first["next_action"]["type"] == "wait_for_review"
    queue = ops.get("/v1/ops/payments/held").json()["data"]
    assert [p["id"] for p in queue] == [first["id"], second["id"]]
    calls = server.runtime.simulators["sim_a"].calls

    released = ops.post(
        f"/v1/ops/payments/{first['id']}/release",
        json={"reason": "customer verified"},
    )
    assert released.status_code == 200 and released.json()["status"] == "succeeded"
    rejected = ops.post(
        f"/v1/ops/payments/{second['id']}/reject",
        json={"reason": "no answer"},
    )
    assert rejected.status_code == 200 and rejected.json()["status"] == "failed"
    assert server.runtime.simulators["sim_a"].calls == calls + 1
    before = count_rows(server.runtime.store)
    twice = ops.post(f"/v1/ops/payments/{second['id']}/release", json={"reason": "r"})
    assert twice.status_code == 409 and twice.json()["error"]["code"] == "payment_not_held"
    assert count_rows(server.runtime.store) == before
    seen = api.get(f"/v1/payments/{second['id']}").json()
    assert seen["failure"]["code"] == "generic_decline"  # the review is never named
    audit = [e["action"] for e in ops.get("/v1/ops/audit").json()["data"]]
    assert audit[:4] == ["payment.reject", "payment.release", "payment.lookup", "control.hold"]


def test_a_hold_without_an_amount_is_refused(server: Server, ops: httpx.Client) -> None:
    before = count_rows(server.runtime.store)
    refused = ops.post(
        "/v1/ops/controls",
        json={"kind": "hold", "ends_at": ENDS_AT, "scope": "bank", "value": "CMB", "reason": "r"},
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == "amount_above"
    assert count_rows(server.runtime.store) == before


def test_bad_reviews_change_nothing(server: Server, ops: httpx.Client) -> None:
    before = count_rows(server.runtime.store)
    unknown = ops.post("/v1/ops/payments/pay_nope/release", json={"reason": "r"})
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "payment_not_found"
    no_reason = ops.post("/v1/ops/payments/pay_nope/reject", json={})
    assert no_reason.status_code == 400
    assert no_reason.json()["error"]["code"] == "parameter_missing"
    negative = ops.post(
        "/v1/ops/controls",
        json={
            "kind": "hold",
            "ends_at": ENDS_AT,
            "scope": "bank",
            "value": "CMB",
            "amount_above": -1,
            "reason": "r",
        },
    )
    assert negative.status_code == 400 and negative.json()["error"]["param"] == "amount_above"
    assert count_rows(server.runtime.store) == before


PAUSE_CMB = {
    "kind": "pause",
    "ends_at": ENDS_AT,
    "scope": "bank",
    "value": "CMB",
    "reason": "CMB maintenance",
}


def test_the_actor_is_the_operator_and_a_body_cannot_name_one(
    server: Server, api: httpx.Client, ops: httpx.Client
) -> None:
    before = count_rows(server.runtime.store)
    for path, body in [
        ("/v1/ops/controls", {**PAUSE_CMB, "actor": "playbook:bank-down"}),
        ("/v1/ops/controls/ctl_x/end", {"reason": "r", "actor": "breaker"}),
        ("/v1/ops/payments/pay_x/release", {"reason": "r", "actor": "ops-wang"}),
        ("/v1/ops/payments/pay_x/reject", {"reason": "r", "reviewer": "ops-wang"}),
    ]:
        refused = ops.post(path, json=body)
        assert refused.status_code == 400, (path, refused.text)
        error = refused.json()["error"]
        assert error["code"] == "parameter_unknown" and error["param"] in ("actor", "reviewer")
    assert count_rows(server.runtime.store) == before
    assert ops.post("/v1/ops/controls", json=PAUSE_CMB).status_code == 201
    (entry,) = ops.get("/v1/ops/audit").json()["data"]
    assert (entry["action"], entry["actor"]) == ("control.pause", "operator:ops-lin")
    (control,) = ops.get("/v1/ops/controls").json()["data"]
    assert control["set_by"] == "operator:ops-lin"


def test_an_identical_active_control_is_refused_with_the_existing_id(
    server: Server, ops: httpx.Client
) -> None:
    first = ops.post("/v1/ops/controls", json=PAUSE_CMB).json()
    before = count_rows(server.runtime.store)
    again = ops.post("/v1/ops/controls", json={**PAUSE_CMB, "reason": "another reason"})
    assert again.status_code == 409, again.text
    assert again.json()["error"]["code"] == "control_exists"
    assert again.json()["error"]["control_id"] == first["id"]
    assert count_rows(server.runtime.store) == before
    for other in ({"method": "card"}, {"value": "ICBC"}, {"scope": "region", "value": "CMB"}):
        assert ops.post("/v1/ops/controls", json={**PAUSE_CMB, **other}).status_code == 201
    ops.post(f"/v1/ops/controls/{first['id']}/end", json={"reason": "done"})
    assert ops.post("/v1/ops/controls", json=PAUSE_CMB).status_code == 201  # ended: set anew


def test_concurrent_identical_controls_make_one(server: Server, ops: httpx.Client) -> None:
    n = 8
    gate = threading.Barrier(n)
    answers: list[httpx.Response] = []

    def post() -> None:
        gate.wait(timeout=10)
        with httpx.Client(base_url=server.url, headers=dict(ops.headers), timeout=30) as c:
            answers.append(c.post("/v1/ops/controls", json=PAUSE_CMB))

    threads = [threading.Thread(target=post) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201] + [409] * (n - 1), [a.text for a in answers]
    (made,) = [a.json()["id"] for a in answers if a.status_code == 201]
    assert {a.json()["error"]["control_id"] for a in answers if a.status_code == 409} == {made}
    assert [c["id"] for c in ops.get("/v1/ops/controls").json()["data"]] == [made]
    audit = ops.get("/v1/ops/audit").json()["data"]
    assert [e["action"] for e in audit] == ["control.pause"]


@pytest.fixture
def listed(db_url: str) -> Iterator[Server]:
    """A server whose configuration lists its banks, and regions through a channel."""
    config = {
        **CONFIG,
        "banks": ["CMB", "ICBC", "招商银行"],
        "providers": {
            **CONFIG["providers"],
            "sim_c": {"type": "simulator", "methods": ["card"], "regions": ["CN-East"]},
        },
    }
    runtime = build_runtime(Settings(database_url=db_url), PaymendConfig.model_validate(config))
    with running(runtime) as started:
        yield started


def test_control_values_are_checked_against_the_configuration(listed: Server) -> None:
    key = make_operator(listed.runtime.store, "ops-lin", "ops")
    ops = httpx.Client(
        base_url=listed.url, headers={"Authorization": f"Bearer {key}"}, timeout=WAIT_S
    )
    before = count_rows(listed.runtime.store)
    region = {**PAUSE_CMB, "scope": "region"}
    refused = [
        ({**PAUSE_CMB, "value": "CBM"}, "bank_unknown", "value"),
        ({**region, "value": "CN-Esat"}, "region_unknown", "value"),
        ({**PAUSE_CMB, "scope": "channel", "value": "sim_z"}, "channel_unknown", "value"),
        ({**PAUSE_CMB, "method": "crad"}, "method_unknown", "method"),
        ({**PAUSE_CMB, "value": "CM\x00B"}, "parameter_invalid", "value"),
        ({**PAUSE_CMB, "value": "CMB\u202e"}, "parameter_invalid", "value"),
        ({**PAUSE_CMB, "value": "CMB\n"}, "parameter_invalid", "value"),
        ({**PAUSE_CMB, "value": " CMB"}, "parameter_invalid", "value"),
        ({**PAUSE_CMB, "value": "CMB|card"}, "parameter_invalid", "value"),
        ({**PAUSE_CMB, "value": "CMB "}, "parameter_invalid", "value"),
        ({**PAUSE_CMB, "value": "<script>"}, "parameter_invalid", "value"),
        ({**PAUSE_CMB, "value": "x" * 65}, "parameter_invalid", "value"),
        ({**PAUSE_CMB, "reason": "ok\x1b[2Jfaked"}, "parameter_invalid", "reason"),
        ({**PAUSE_CMB, "reason": "line\nbreak"}, "parameter_invalid", "reason"),
    ]
    for body, code, param in refused:
        response = ops.post("/v1/ops/controls", json=body)
        assert response.status_code == 400, (body, response.text)
        assert (response.json()["error"]["code"], response.json()["error"]["param"]) == (
            code,
            param,
        ), body
    ended = ops.post("/v1/ops/controls/ctl_x/end", json={"reason": "bad\x00"})
    assert ended.status_code == 400 and ended.json()["error"]["param"] == "reason"
    assert count_rows(listed.runtime.store) == before
    for body in (PAUSE_CMB, {**PAUSE_CMB, "value": "招商银行"}, {**region, "value": "CN-East"}):
        assert ops.post("/v1/ops/controls", json=body).status_code == 201, body
    ops.close()


def test_without_a_list_any_sound_bank_or_region_is_taken(ops: httpx.Client) -> None:
    for value in (
        "BOC",
        "Bank of China (Hong Kong)",
        "招商银行",
        "cn-north-1",
        "St. George",
        "People's Bank",
        "R&D Bank",
    ):
        response = ops.post("/v1/ops/controls", json={**PAUSE_CMB, "value": value})
        assert response.status_code == 201, (value, response.text)


HOLD = {
    "kind": "hold",
    "ends_at": ENDS_AT,
    "scope": "bank",
    "value": "CMB",
    "amount_above": 100_00,
    "currency": "CNY",
    "reason": "CMB errors: review large payments",
}


def test_a_hold_applies_to_payments_of_its_currency_only(
    server: Server, api: httpx.Client, ops: httpx.Client
) -> None:
    assert ops.post("/v1/ops/controls", json=HOLD).status_code == 201
    cmb = {**BODY, "bank": "CMB"}

    def status(order: str, **changes: object) -> str:
        paid = api.post("/v1/payments", json={**cmb, "order_id": order, **changes})
        assert paid.status_code == 201, paid.text
        return str(paid.json()["status"])

    assert status("cny-large", amount=500_00) == "held"
    # the same 50000 minor units are ¥50,000 and ₩50,000: not CNY, not held
    for currency in ("JPY", "KRW", "KWD"):
        assert status(f"{currency}-same", amount=500_00, currency=currency) == "succeeded"
    assert status("cny-small", amount=99_00) == "succeeded"
    yen = {**HOLD, "amount_above": 100_000, "currency": "jpy"}  # ¥100,000
    made = ops.post("/v1/ops/controls", json=yen).json()
    assert (made["currency"], made["amount_above"]) == ("JPY", 100_000)
    assert status("jpy-large", amount=150_000, currency="JPY") == "held"


def test_a_hold_needs_a_known_currency_and_other_controls_take_none(
    server: Server, ops: httpx.Client
) -> None:
    before = count_rows(server.runtime.store)
    no_currency = {k: v for k, v in HOLD.items() if k != "currency"}
    for body, code, param in [
        (no_currency, "control_invalid", "currency"),
        ({**HOLD, "currency": "XYZ"}, "currency_unsupported", "currency"),
        ({**PAUSE_CMB, "currency": "CNY"}, "control_invalid", "currency"),
    ]:
        response = ops.post("/v1/ops/controls", json=body)
        assert response.status_code == 400, (body, response.text)
        error = response.json()["error"]
        assert (error["code"], error["param"]) == (code, param), body
    assert count_rows(server.runtime.store) == before


def test_a_control_is_previewed_then_set_with_an_end_within_seven_days(db_url: str) -> None:
    """The preview counts the payments of the last hour the control would have touched
    and writes nothing; the control needs an end, later than now and at most 7 days
    ahead, and lifts itself then (on the server's clock)."""
    clock = ManualClock(NOW + timedelta(hours=1))
    with running_on(db_url, clock) as server, server.client() as api:
        key = make_operator(server.runtime.store, "ops-lin", "ops")
        ops = server.client(key)
        for i in range(3):
            api.post("/v1/payments", json={**BODY, "order_id": f"o-{i}", "bank": "CMB"})
        api.post("/v1/payments", json={**BODY, "order_id": "o-icbc"})
        clock.advance(30 * 60)
        before = count_rows(server.runtime.store)
        end = clock.now() + timedelta(minutes=15)
        pause = {**PAUSE_CMB, "ends_at": end.isoformat()}
        preview = ops.post("/v1/ops/controls/preview", json=pause)
        assert preview.status_code == 200, preview.text
        shown = preview.json()
        assert (shown["object"], shown["touched"]) == ("control_preview", 3)  # not ICBC's
        assert shown["since"] == (clock.now() - timedelta(hours=1)).isoformat()
        assert shown["control"]["ends_at"] == end.isoformat()
        assert count_rows(server.runtime.store) == before  # nothing set, nothing audited
        clock.advance(31 * 60)  # the payments are more than an hour old now
        pause["ends_at"] = (clock.now() + timedelta(minutes=15)).isoformat()
        assert ops.post("/v1/ops/controls/preview", json=pause).json()["touched"] == 0

        week = timedelta(days=7)
        for ends_at, code in [
            (None, "parameter_missing"),
            ((clock.now() + week + timedelta(seconds=1)).isoformat(), "parameter_invalid"),
            (clock.now().isoformat(), "parameter_invalid"),
            ("2026-03-01T14:00:00", "parameter_invalid"),  # no time zone
        ]:
            body = {k: v for k, v in pause.items() if k != "ends_at"}
            if ends_at is not None:
                body["ends_at"] = ends_at
            for path in ("/v1/ops/controls/preview", "/v1/ops/controls"):
                refused = ops.post(path, json=body)
                assert refused.status_code == 400, (path, ends_at, refused.text)
                error = refused.json()["error"]
                assert (error["code"], error["param"]) == (code, "ends_at"), ends_at
        assert count_rows(server.runtime.store) == before

        pause["ends_at"] = (clock.now() + week).isoformat()  # the longest it may last
        made = ops.post("/v1/ops/controls", json=pause)
        assert made.status_code == 201, made.text
        assert made.json()["ends_at"] == (clock.now() + week).isoformat()
        assert [c["id"] for c in ops.get("/v1/ops/controls").json()["data"]] == [made.json()["id"]]
        clock.advance(week.total_seconds())
        assert ops.get("/v1/ops/controls").json()["data"] == []  # lifted at its end
        viewer = server.client(make_operator(server.runtime.store, "vi-an", "viewer"))
        assert viewer.post("/v1/ops/controls/preview", json=pause).status_code == 403
        ops.close()
        viewer.close()
