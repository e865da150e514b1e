"""The console in a real browser: Debian's chromium driven by playwright, against a real
server on 127.0.0.1 (one server and one browser for the module, to stay fast).

Without /usr/bin/chromium these tests skip, saying so, except under CI=true, where they
fail: .ci/run installs it (`apt-get install chromium fonts-wqy-microhei`). With
PAYMEND_CONSOLE_SCREENSHOTS=<folder> they save the screenshots docs/console.md shows.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from paymend.config import PaymendConfig, Settings
from paymend.domain.incident import Incident
from paymend.engine.runtime import build_runtime
from paymend.store import incidents
from paymend.store.migrate import upgrade
from tests.api.conftest import running
from tests.api.test_payments_api import BODY
from tests.conftest import fresh_postgres_database
from tests.console.conftest import CONSOLE_CONFIG, PASSWORD, Console
from tests.helpers import NOW, WAIT_S, ManualClock

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = os.environ.get("PAYMEND_CONSOLE_SCREENSHOTS")

if not CHROMIUM.exists():
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {CHROMIUM} is missing (.ci/run installs it)", pytrace=False)
    pytest.skip(
        f"{CHROMIUM} is missing: apt-get install chromium fonts-wqy-microhei",
        allow_module_level=True,
    )

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def database(request: pytest.FixtureRequest) -> Iterator[str]:
    """The module's own database on SQLite, then on PostgreSQL: the pages read both."""
    if request.param == "sqlite":
        path = request.getfixturevalue("tmp_path_factory").mktemp("console") / "paymend.db"
        upgrade(f"sqlite:///{path}")
        yield f"sqlite:///{path}"
    else:
        yield fresh_postgres_database("paymend_console")


@pytest.fixture(scope="module")
def live(database: str) -> Iterator[tuple[Console, dict[str, Any]]]:
    """A server with half an hour of traffic: cards on sim_a, healthy, one of them
    declined; WeChat Pay on sim_b (the one channel taking it), where a payment's
    technical error (two calls: one retry) in the last five minutes' fifty-odd makes
    it degraded."""
    clock = ManualClock(NOW + timedelta(hours=1))
    runtime = build_runtime(
        Settings(database_url=database),
        PaymendConfig.model_validate(CONSOLE_CONFIG),
        clock=clock,
    )
    with running(runtime) as server:
        console = Console(server, clock)
        console.operator("ops-lin", "admin")
        with server.client() as api:
            wallet = {**BODY, "method": "wechat_pay", "bank": None}
            for i in range(85):  # 40 over the half hour, then a burst
                if i < 40:
                    clock.advance(45)
                token = "sim_error_system_error" if i in (10, 25, 60) else "sim_approve"
                api.post(
                    "/v1/payments", json={**wallet, "payment_token": token, "order_id": f"wx-{i}"}
                )
                if i % 10 == 9:
                    api.post("/v1/payments", json={**BODY, "order_id": f"order-{i // 10}"})
            token = "sim_decline_do_not_honor"
            declined = api.post(
                "/v1/payments", json={**BODY, "order_id": "order-7731", "payment_token": token}
            ).json()
        yield console, declined


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's chromium under playwright. Start it after the server it visits:
    playwright's sync API runs an event loop of its own in this thread while it runs."""
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def browser(live: tuple[Console, dict[str, Any]]) -> Iterator[Browser]:
    """Stopped before the next database's server starts."""
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(live: tuple[Console, dict[str, Any]], browser: Browser) -> Iterator[Page]:
    """A fresh browser context (no cookies); the server first: playwright's sync API
    runs an event loop of its own in this thread once started."""
    context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    yield opened
    context.close()


def shot(page: Page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / name), full_page=True)


def log_in(page: Page, console: Console) -> None:
    page.goto(f"{console.url}/console")
    expect(page).to_have_url(f"{console.url}/console/login?next=/console/health")
    page.get_by_label("Operator").fill("ops-lin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{console.url}/console/health")


def find_order(page: Page, order_id: str) -> None:
    """Search the payments page for one order id (the results page follows)."""
    page.get_by_role("link", name="Payments").click()
    page.get_by_label("Order id").fill(order_id)
    page.get_by_role("button", name="Search").click()


def test_log_in_and_see_each_channel_with_its_badge(
    page: Page, live: tuple[Console, dict[str, Any]]
) -> None:
    console, _ = live
    log_in(page, console)
    expect(page.get_by_role("heading", name="Live health")).to_be_visible()
    sim_a = page.locator('tbody[data-channel="sim_a"]')
    expect(sim_a.locator("[data-badge]")).to_have_text("healthy")
    expect(page.locator('tbody[data-channel="sim_b"] [data-badge]')).to_have_text("degraded")
    # the chart drew from its JSON (uPlot, vendored): one per channel
    expect(page.locator('#charts .chart[data-channel="sim_a"] canvas')).to_be_visible()
    shot(page, "health.png")


def test_find_a_failed_payment_by_order_id_and_read_its_timeline(
    page: Page, live: tuple[Console, dict[str, Any]]
) -> None:
    console, declined = live
    log_in(page, console)
    find_order(page, "order-7731")
    page.get_by_role("link", name=declined["id"]).click()
    expect(page.get_by_role("heading", name=f"Payment {declined['id']}")).to_be_visible()
    attempt = page.locator('li[data-kind="attempt"]')
    expect(attempt).to_contain_text("Attempt 1 on sim_a: failed")
    expect(attempt).to_contain_text("DO_NOT_HONOR")
    expect(attempt).to_contain_text(declined["attempts"][0]["unified_code"])
    expect(page.locator("section.told")).to_contain_text(declined["failure"]["title"])
    shot(page, "payment.png")


def test_switch_to_simplified_chinese_and_stay_there(
    page: Page, live: tuple[Console, dict[str, Any]]
) -> None:
    console, _ = live
    log_in(page, console)
    page.get_by_role("link", name="简体中文").click()
    expect(page.get_by_role("heading", name="实时健康状况")).to_be_visible()
    expect(page.locator('tbody[data-channel="sim_a"] [data-badge]')).to_have_text("健康")
    page.get_by_role("link", name="支付").click()
    expect(page.get_by_role("heading", name="支付")).to_be_visible()
    shot(page, "payments-zh.png")


def test_an_ended_session_sends_the_live_panel_to_the_log_in_page(
    page: Page, live: tuple[Console, dict[str, Any]]
) -> None:
    console, _ = live
    log_in(page, console)
    console.clock.advance(31 * 60)  # idle past console.session_idle
    # the panel's next poll (htmx), asked for now rather than in five seconds
    page.wait_for_function("typeof htmx !== 'undefined'")  # its script is deferred
    page.evaluate("htmx.ajax('GET', '/console/health/live', {target: '#live', swap: 'outerHTML'})")
    expect(page).to_have_url(f"{console.url}/console/login?next=/console/health/live&expired=1")
    expect(page.get_by_role("alert")).to_have_text("Your session ended. Log in again.")


def test_the_server_is_reachable_only_on_loopback(live: tuple[Console, dict[str, Any]]) -> None:
    console, _ = live
    assert console.url.startswith("http://127.0.0.1:")
    assert httpx.get(f"{console.url}/healthz", timeout=WAIT_S).status_code == 200


def test_refund_part_of_a_payment_from_its_page(
    page: Page, live: tuple[Console, dict[str, Any]]
) -> None:
    console, _ = live
    log_in(page, console)
    find_order(page, "order-3")
    page.locator("table.results a").first.click()
    form = page.locator('form[action$="/refund"]')
    form.get_by_label("Amount (minor units; empty: all that is left)").fill("250")
    form.get_by_label("Reason").fill("one item out of stock")
    form.get_by_role("button", name="Refund").click()  # not confirmed: not sent
    expect(page.locator('li[data-kind="refund"]')).to_have_count(0)
    form.get_by_label("I confirm this refund").check()
    form.get_by_role("button", name="Refund").click()
    expect(page.get_by_role("status")).to_contain_text("Refund re_")
    refund = page.locator('li[data-kind="refund"]')
    expect(refund).to_contain_text("2.50 CNY")
    expect(refund).to_contain_text("one item out of stock")
    expect(page.locator('li[data-kind="audit"]')).to_contain_text("operator:ops-lin")


def test_grant_a_compensation_from_a_payments_page(
    page: Page, live: tuple[Console, dict[str, Any]]
) -> None:
    console, declined = live
    log_in(page, console)
    page.goto(f"{console.url}/console/payments/{declined['id']}")
    page.locator("summary", has_text="Grant a compensation").click()  # folded
    form = page.locator('form[action$="/compensate"]')
    form.get_by_label("Kind").select_option("credit")
    form.get_by_label("Amount (minor units)").fill("300")
    form.get_by_label("Reason").fill("declined twice at checkout")
    form.get_by_label("I confirm this compensation to the customer").check()
    form.get_by_role("button", name="Grant a compensation").click()
    expect(page.get_by_role("status")).to_contain_text("Compensation cmp_")
    granted = page.locator('li[data-kind="compensation"]')
    expect(granted).to_contain_text("Compensation credit: 3.00 CNY by operator:ops-lin")
    expect(granted).to_contain_text("declined twice at checkout")


def test_pause_a_bank_see_it_on_the_health_page_and_resume_it(
    page: Page, live: tuple[Console, dict[str, Any]]
) -> None:
    console, _ = live
    log_in(page, console)
    form = page.locator("#new-control")
    form.locator('select[name="kind"]').select_option("pause")
    form.locator('select[name="scope"]').select_option("bank")
    form.get_by_label("Name").fill("ICBC")
    form.locator('select[name="ends_in"]').select_option("15")
    form.get_by_label("Reason", exact=True).fill("ICBC maintenance window")
    form.get_by_role("button", name="Preview").click()
    # every card payment of the fixture went to ICBC within the hour
    touched = page.locator("[data-touched]")
    expect(touched).to_contain_text("In the last hour it would have stopped")
    assert int(touched.get_attribute("data-touched") or 0) >= 8
    page.get_by_label("I confirm this control and its end time").check()
    page.get_by_role("button", name="Pause now").click()
    expect(page.get_by_role("status")).to_have_text("Paused bank:ICBC.")
    row = page.locator('tr[data-control="pause bank:ICBC"]')
    expect(row).to_contain_text("ICBC maintenance window")
    expect(row).to_contain_text("operator:ops-lin")
    with console.server.client() as api:
        waiting = api.post("/v1/payments", json={**BODY, "order_id": "during-pause"}).json()
    # no channel may take an ICBC card now: the payment waits for the pause, uncalled
    assert (waiting["status"], waiting["attempts"]) == ("processing", []), waiting
    row.get_by_placeholder("Reason").fill("window over")
    row.get_by_role("button", name="Resume").click()
    expect(page.locator('tr[data-control="pause bank:ICBC"]')).to_have_count(0)


def test_acknowledge_and_review_the_incident_of_a_channel_outage(
    page: Page, live: tuple[Console, dict[str, Any]]
) -> None:
    """As in the lab: sim_b, the one channel for WeChat Pay, refuses every connection
    until its circuit opens; the playbooks (run on the server's loop, as the worker does)
    open an incident; ops acknowledge it, the channel comes back, the incident resolves
    by itself, and ops review it."""
    console, _ = live
    server, clock = console.server, console.clock
    sim_b = server.runtime.simulators["sim_b"]
    playbooks = server.runtime.worker.playbooks
    assert playbooks is not None

    def pay(n: int, tag: str) -> list[str]:
        with server.client() as api:
            wallet = {**BODY, "method": "wechat_pay", "bank": None}
            statuses = []
            for i in range(n):
                body = {**wallet, "order_id": f"{tag}-{i}"}
                statuses.append(api.post("/v1/payments", json=body).json()["status"])
                clock.advance(1)
        return statuses

    def channel_down() -> list[Incident]:
        found = server.runtime.store.run_sync(lambda c: incidents.search(c, None, None, 50))
        return [i for i in found if i.playbook == "channel-down"]

    sim_b.settings = dataclasses.replace(sim_b.settings, outage=True)
    assert "succeeded" not in pay(6, "outage")
    server.on_loop(playbooks.tick())
    (opened,) = channel_down()

    log_in(page, console)
    page.get_by_role("link", name="Incidents").click()
    page.locator(f'tr[data-incident="{opened.id}"] a').click()
    expect(page.get_by_role("heading", name=opened.title)).to_contain_text("open")
    page.get_by_label("Reason").fill("on it: sim_b refuses connections")
    page.get_by_role("button", name="Acknowledge: I am on it").click()
    expect(page.get_by_role("status")).to_have_text("Acknowledged.")
    expect(page.locator("dl.facts")).to_contain_text("operator:ops-lin")
    expect(page.locator('li[data-kind="action"]').first).to_be_visible()  # the playbook's

    sim_b.settings = dataclasses.replace(sim_b.settings, outage=False)
    clock.advance(11)  # the circuit's first wait: probes pass and close it
    assert pay(5, "back") == ["succeeded"] * 5
    server.on_loop(playbooks.tick())
    clock.advance(31)  # clear for the playbook's `recover: {after: 30s}`
    server.on_loop(playbooks.tick())
    (resolved,) = channel_down()
    assert resolved.status.value == "resolved"

    page.reload()
    expect(page.get_by_role("heading", name=opened.title)).to_contain_text("resolved")
    page.get_by_label("Cause").fill("sim_b refused connections for a minute")
    page.get_by_label("Fix").fill("none: WeChat Pay has no second channel")
    page.get_by_label("Lessons").fill("page sooner on refused connections")
    page.get_by_label("Follow-ups").fill("Add a second WeChat Pay channel (lin, 15 Dec)")
    page.get_by_role("button", name="Save the review").click()
    expect(page.get_by_role("status")).to_have_text("Review saved.")
    expect(page.locator("dl.facts").last).to_contain_text("page sooner on refused connections")
    expect(page.locator("ul.follow-ups li")).to_have_text(
        ["Add a second WeChat Pay channel (lin, 15 Dec)"]
    )
    shot(page, "incident.png")
