"""A real paymend server for the console's tests (uvicorn on 127.0.0.1, a free port),
on SQLite or PostgreSQL, with a clock the test moves: sessions end on it. Operators get
console passwords through the same code as `paymend operators password`."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest

from paymend.config import PaymendConfig, Settings
from paymend.console.accounts import Accounts
from paymend.engine.runtime import build_runtime
from tests.api.conftest import CONFIG, Server, running
from tests.helpers import NOW, ManualClock, make_operator

PASSWORD = "correct horse battery"
CONSOLE_CONFIG = {**CONFIG, "console": {"session_idle": "30m", "session_max": "8h"}}


@dataclass
class Console:
    server: Server
    clock: ManualClock

    @property
    def url(self) -> str:
        return self.server.url

    def operator(self, name: str, role: str, password: str = PASSWORD) -> str:
        """An operator of the ops API with a console password."""
        store = self.server.runtime.store
        make_operator(store, name, role)
        accounts = Accounts(store, self.clock, 60, 60)
        asyncio.run(accounts.set_password(name, password, "cli:test"))
        return name

    def browser(self) -> httpx.Client:
        """A client that keeps cookies, as a browser does, and does not follow redirects."""
        return httpx.Client(base_url=self.url, follow_redirects=False, timeout=30)

    def login(self, name: str, password: str = PASSWORD) -> httpx.Client:
        client = self.browser()
        answer = log_in(client, name, password)
        assert answer.status_code == 303, answer.text
        return client


def form_token(page: str, field: str) -> str:
    found = re.search(rf'name="{field}" value="([^"]*)"', page)
    assert found, f"no {field} in the page"
    return found.group(1)


def log_in(client: httpx.Client, name: str, password: str) -> httpx.Response:
    page = client.get("/console/login")
    token = form_token(page.text, "login_token")
    return client.post(
        "/console/login",
        data={"login_token": token, "name": name, "password": password, "next": "/console/health"},
    )


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW + timedelta(hours=1))


def _console(db_url: str, clock: ManualClock) -> Iterator[Console]:
    runtime = build_runtime(
        Settings(database_url=db_url), PaymendConfig.model_validate(CONSOLE_CONFIG), clock=clock
    )
    with running(runtime) as server:
        yield Console(server, clock)


@pytest.fixture
def console(db_url: str, clock: ManualClock) -> Iterator[Console]:
    yield from _console(db_url, clock)


@pytest.fixture
def sqlite_console(sqlite_url: str, clock: ManualClock) -> Iterator[Console]:
    """On SQLite only: for what reads the same on both databases (forms, words, roles),
    where the second server would only cost time."""
    yield from _console(sqlite_url, clock)
