"""Incidents in the console: the open ones and the case library, searchable; one with
its diagnosis and timeline; acknowledging and reviewing (the ops role), audit-logged."""

from __future__ import annotations

import re
from datetime import timedelta

from paymend.store import controls
from paymend.store import incidents as repo
from tests.api.test_incidents_api import open_incident
from tests.api.test_payments_api import BODY
from tests.console.conftest import Console, form_token
from tests.console.test_pages import _pay
from tests.helpers import NOW


def _library(console: Console) -> None:
    store = console.server.runtime.store
    open_incident(store, "inc_a", "Timeouts for CMB cards", "CMB", 0)
    store.run_sync(lambda c: repo.resolve(c, "inc_a", NOW + timedelta(minutes=40), "recovered"))
    open_incident(store, "inc_b", "Declines at ICBC", "ICBC", 1)


def test_the_case_library_finds_the_last_time_cmb_timed_out(console: Console) -> None:
    _library(console)
    client = console.login(console.operator("vera", "viewer"))
    page = client.get("/console/incidents")
    assert page.status_code == 200
    assert re.findall(r'data-incident="(\w+)"', page.text) == ["inc_b", "inc_a"]  # open first
    found = client.get("/console/incidents", params={"q": "cmb"})
    assert re.findall(r'data-incident="(\w+)"', found.text) == ["inc_a"]
    one = client.get("/console/incidents/inc_a")
    assert "Timeouts for CMB cards" in one.text and "error rate 40% for CMB" in one.text
    assert "bank=CMB" in one.text  # the diagnosis
    assert "Save the review" not in one.text  # a viewer reads only
    assert "Affected payments" not in one.text  # customers' payments: support and above
    assert client.get("/console/incidents/inc_nope").status_code == 404


def test_ops_acknowledge_an_open_incident_and_review_a_resolved_one(console: Console) -> None:
    _library(console)
    client = console.login(console.operator("ops-lin", "ops"))
    page = client.get("/console/incidents/inc_b")
    token = form_token(page.text, "csrf")
    acked = client.post(
        "/console/incidents/inc_b/acknowledge", data={"reason": "on it", "csrf": token}
    )
    assert acked.status_code == 303
    assert "ops-lin" in client.get(acked.headers["location"]).text
    early = client.post(
        "/console/incidents/inc_b/review",
        data={"cause": "c", "resolution": "r", "lessons": "l", "csrf": token},
    )
    assert early.status_code == 409  # still open
    review = {
        "cause": "CMB gateway",
        "resolution": "failover",
        "lessons": "alert sooner",
        "follow_ups": "Page at 5% errors (lin)\n\n  Ask CMB for maintenance notices  \n",
    }
    missing = client.post("/console/incidents/inc_a/review", data={**review, "lessons": ""})
    assert missing.status_code == 403  # no CSRF token: refused before anything else
    done = client.post("/console/incidents/inc_a/review", data={**review, "csrf": token})
    assert done.status_code == 303
    text = client.get("/console/incidents/inc_a").text
    assert "CMB gateway" in text and "alert sooner" in text and "operator:ops-lin" in text
    assert f"operator:ops-lin · {console.clock.now():%Y-%m-%d %H:%M:%S}</dd>" in text
    tasks = re.findall(r"<li>([^<]*)</li>", text.split('class="follow-ups"')[1])
    assert tasks == ["Page at 5% errors (lin)", "Ask CMB for maintenance notices"]
    entries = console.server.runtime.store.run_sync(lambda c: controls.audit_entries(c, 5))
    actions = [(e["action"], e["actor"]) for e in entries if e["action"].startswith("incident")]
    assert actions == [
        ("incident.review", "operator:ops-lin"),
        ("incident.acknowledge", "operator:ops-lin"),
    ]


def test_an_incident_lists_the_payments_it_hurt_and_codes_lead_to_the_catalogue(
    sqlite_console: Console,
) -> None:
    console = sqlite_console
    _library(console)  # inc_b: sim_a x ICBC, open since an hour before the server's clock
    hurt = _pay(console, {**BODY, "order_id": "o-err", "payment_token": "sim_error_system_error"})
    declined = _pay(
        console, {**BODY, "order_id": "o-dec", "payment_token": "sim_decline_do_not_honor"}
    )
    _pay(console, {**BODY, "order_id": "o-ok"})
    _pay(
        console,
        {**BODY, "order_id": "o-cmb", "bank": "CMB", "payment_token": "sim_error_system_error"},
    )
    client = console.login(console.operator("cs-wang", "support"))
    page = client.get("/console/incidents/inc_b")
    # a system error hurt; a decline is the payer's; a success and another bank are not its
    assert re.findall(r'data-payment="(\w+)"', page.text) == [hurt["id"]]
    assert declined["id"] not in page.text
    (seen,) = console.server.runtime.store.run_sync(
        lambda c: controls.audit_entries(c, 1, target="incident:inc_b")
    )
    assert seen["action"] == "payment.lookup" and seen["details"]["payments"] == [hurt["id"]]

    found = client.get("/console/failures", params={"provider_code": "system_error"})
    assert 'data-raw="simulator:SYSTEM_ERROR"' in found.text
    assert 'href="/console/failures/provider_error"' in found.text
    entry = client.get("/console/failures/provider_error")
    assert entry.text.count('data-raw="simulator:SYSTEM_ERROR"') == 1  # not in <title>
    title = entry.text.split("<title>", 1)[1].split("</title>", 1)[0]
    assert "<" not in title and title.startswith("provider_error")
    none = client.get("/console/failures", params={"provider_code": "no-such-code"})
    assert "No provider code holds" in none.text
