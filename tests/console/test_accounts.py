"""Logging in and out of the console: passwords, sessions in cookies that end on the
injected clock, CSRF tokens on every POST, roles, and the audit log."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from paymend.console import accounts
from paymend.console.accounts import Accounts, hash_password, verify_password
from paymend.domain.errors import InvalidInput
from paymend.store import controls
from tests.console.conftest import PASSWORD, Console, form_token, log_in
from tests.helpers import count_rows


def test_a_password_is_stored_as_an_argon2id_hash_only() -> None:
    stored = hash_password(PASSWORD)
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert verify_password(stored, PASSWORD)
    assert not verify_password(stored, PASSWORD + "!")
    assert not verify_password(None, PASSWORD)
    with pytest.raises(InvalidInput):
        hash_password("short")


def test_logging_in_sets_a_strict_httponly_cookie_and_is_audited(console: Console) -> None:
    console.operator("ops-lin", "ops")
    client = console.browser()
    answer = log_in(client, "ops-lin", PASSWORD)
    assert answer.status_code == 303 and answer.headers["location"] == "/console/health"
    cookie = next(
        h for h in answer.headers.get_list("set-cookie") if h.startswith("paymend_console=")
    )
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    assert client.get("/console/health").status_code == 200
    entries = console.server.runtime.store.run_sync(lambda c: controls.audit_entries(c, 10))
    assert ("operator.login", "operator:ops-lin") in [(e["action"], e["actor"]) for e in entries]


@pytest.mark.parametrize(
    ("name", "password"), [("ops-lin", "wrong password!"), ("nobody", PASSWORD)]
)
def test_a_wrong_password_or_name_gets_the_same_refusal(
    console: Console, name: str, password: str
) -> None:
    console.operator("ops-lin", "ops")
    client = console.browser()
    answer = log_in(client, name, password)
    assert answer.status_code == 401
    assert "do not match" in answer.text
    assert "paymend_console" not in client.cookies
    assert client.get("/console/health").status_code == 303  # still to the log-in page


def test_a_log_in_without_the_forms_own_token_is_refused(console: Console) -> None:
    console.operator("ops-lin", "ops")
    client = console.browser()
    client.get("/console/login")
    forged = client.post(
        "/console/login",
        data={"login_token": "guessed", "name": "ops-lin", "password": PASSWORD},
    )
    assert forged.status_code == 403
    assert "paymend_console" not in client.cookies


def test_a_forged_post_without_the_csrf_token_is_refused_and_changes_nothing(
    console: Console,
) -> None:
    console.operator("ops-lin", "ops")
    client = console.login("ops-lin")
    before = count_rows(console.server.runtime.store)
    pause = {"kind": "pause", "scope": "bank", "value": "CMB", "reason": "maintenance"}
    pause |= {"ends_in": "60", "confirm": "yes"}
    for token in (None, "", "0" * 64):
        data = pause if token is None else {**pause, "csrf": token}
        forged = client.post("/console/controls", data=data)
        assert forged.status_code == 403, forged.text
    assert count_rows(console.server.runtime.store) == before
    # the same form with the page's token goes through
    token = form_token(client.get("/console/health").text, "csrf")
    done = client.post("/console/controls", data={**pause, "csrf": token})
    assert done.status_code == 303, done.text
    assert "CMB" in client.get("/console/health").text


def test_a_session_ends_after_idling_on_the_injected_clock(console: Console) -> None:
    console.operator("ops-lin", "ops")
    client = console.login("ops-lin")
    console.clock.advance(29 * 60)
    assert client.get("/console/health").status_code == 200  # seen: idle restarts
    console.clock.advance(29 * 60)
    assert client.get("/console/health").status_code == 200
    console.clock.advance(31 * 60)
    ended = client.get("/console/health")
    assert ended.status_code == 303
    assert ended.headers["location"] == "/console/login?next=/console/health&expired=1"
    # an htmx poll is told where to go instead of being redirected
    polled = client.get("/console/health/live", headers={"HX-Request": "true"})
    assert polled.status_code == 401 and polled.headers["HX-Redirect"].startswith("/console/login")


def test_a_session_ends_at_its_maximum_age_however_busy(console: Console) -> None:
    console.operator("ops-lin", "ops")
    client = console.login("ops-lin")
    for _ in range(16):  # every 29 minutes for 7 h 44 min
        console.clock.advance(29 * 60)
        assert client.get("/console/health").status_code == 200
    console.clock.advance(20 * 60)  # past 8 hours
    assert client.get("/console/health").status_code == 303


def test_logging_out_ends_the_session_for_every_copy_of_the_cookie(console: Console) -> None:
    console.operator("ops-lin", "ops")
    client = console.login("ops-lin")
    copy = httpx.Client(base_url=console.url, cookies=dict(client.cookies), timeout=30)
    token = form_token(client.get("/console/health").text, "csrf")
    out = client.post("/console/logout", data={"csrf": token})
    assert out.status_code == 303 and out.headers["location"] == "/console/login?out=1"
    assert copy.get("/console/health", follow_redirects=False).status_code == 303


def test_a_new_password_ends_the_operators_sessions(console: Console) -> None:
    console.operator("ops-lin", "ops")
    client = console.login("ops-lin")
    accounts = Accounts(console.server.runtime.store, console.clock, 60, 60)
    asyncio.run(accounts.set_password("ops-lin", "another long password", "cli:test"))
    assert client.get("/console/health").status_code == 303
    assert log_in(console.browser(), "ops-lin", PASSWORD).status_code == 401


def test_roles_limit_what_an_operator_sees_and_does(console: Console) -> None:
    console.operator("vera", "viewer")
    viewer = console.login("vera")
    page = viewer.get("/console/health")
    assert page.status_code == 200
    assert 'action="/console/controls"' not in page.text  # no pause form for a viewer
    assert 'href="/console/payments"' not in page.text
    assert viewer.get("/console/payments").status_code == 403
    token = form_token(page.text, "csrf")
    refused = viewer.post(
        "/console/controls",
        data={"scope": "bank", "value": "CMB", "reason": "x", "csrf": token},
    )
    assert refused.status_code == 403 and "ops or above" in refused.text


def test_card_data_in_a_form_is_refused_before_anything_reads_it(console: Console) -> None:
    console.operator("ops-lin", "ops")
    client = console.login("ops-lin")
    token = form_token(client.get("/console/health").text, "csrf")
    before = count_rows(console.server.runtime.store)
    refused = client.post(
        "/console/controls",
        data={"scope": "bank", "value": "CMB", "reason": "4111 1111 1111 1111", "csrf": token},
    )
    assert refused.status_code == 400
    assert "4111" not in refused.text
    assert count_rows(console.server.runtime.store) == before
    # The CSRF field is the session's own hex digest, compared and never kept: a digit
    # run in it that happens to pass Luhn is not card data; a forged one is refused.
    forged = client.post(
        "/console/controls",
        data={"scope": "bank", "value": "CMB", "reason": "x", "csrf": "a4111111111111111b"},
    )
    assert forged.status_code == 403
    assert count_rows(console.server.runtime.store) == before


def test_after_log_in_only_console_pages_are_destinations(console: Console) -> None:
    console.operator("ops-lin", "ops")
    for target, lands in [
        ("/console/payments", "/console/payments"),
        ("https://evil.example/", "/console/health"),
        ("//evil.example/console", "/console/health"),
        ("/console.evil.example", "/console/health"),
    ]:
        client = console.browser()
        token = form_token(client.get("/console/login").text, "login_token")
        answer = client.post(
            "/console/login",
            data={"login_token": token, "name": "ops-lin", "password": PASSWORD, "next": target},
        )
        assert answer.headers["location"] == lands


def test_log_ins_are_limited_per_operator_and_per_address(
    sqlite_console: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    console = sqlite_console  # two plain queries: the second database would only cost time
    monkeypatch.setattr(accounts, "LIMIT_PER_NAME", 2)  # fewer tries than shipped: faster
    monkeypatch.setattr(accounts, "LIMIT_PER_IP", 3)
    console.operator("ops-lin", "ops")
    client = console.browser()
    for _ in range(accounts.LIMIT_PER_NAME):
        assert log_in(client, "ops-lin", "wrong password!").status_code == 401
    limited = log_in(client, "ops-lin", PASSWORD)  # even the right one: not checked now
    assert limited.status_code == 429 and "Too many failed log-ins" in limited.text
    store = console.server.runtime.store
    entries = store.run_sync(lambda c: controls.audit_entries(c, 2, target="operator:ops-lin"))
    assert [(e["action"], e["actor"]) for e in entries] == [
        ("operator.login_limited", "console"),
        ("operator.login_failed", "console"),
    ]
    assert entries[0]["details"]["ip"] == "127.0.0.1"
    # other names from the same address fail on until the address's own limit
    for i in range(accounts.LIMIT_PER_IP - accounts.LIMIT_PER_NAME):
        assert log_in(client, f"guess-{i}", "wrong password!").status_code == 401
    assert log_in(client, "someone-else", "wrong password!").status_code == 429
    console.clock.advance(accounts.LIMIT_WINDOW.total_seconds() + 1)  # the window passed
    assert log_in(client, "ops-lin", PASSWORD).status_code == 303
