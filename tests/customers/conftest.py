"""One real paymend server for the tests of the customers' pages (uvicorn on
127.0.0.1, SQLite), with a link key, the shop's checkout URL and support contact, and a
clock the test moves (links expire on it)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import uvicorn

from paymend.api.app import create_app
from paymend.config import PaymendConfig, Settings
from paymend.domain.ids import MerchantId
from paymend.engine.runtime import build_runtime
from paymend.store import merchants
from tests.api.conftest import CONFIG, Server, serve_asgi
from tests.api.test_payments_api import BODY
from tests.helpers import NOW, ManualClock

T = TypeVar("T")
LINK_KEY = "a-link-key-for-tests-only-0123456789"
CHECKOUT = "https://shop.example/checkout?order={order_id}"
SUPPORT = "mailto:help@shop.example"
SHOP_CONFIG: dict[str, Any] = {**CONFIG, "customers": {"checkout_url": CHECKOUT, "link_ttl": "1d"}}


@dataclass
class Shop:
    server: Server
    clock: ManualClock
    uvicorn: uvicorn.Server  # paymend's, serving on its own event loop

    def on_server(self, work: Coroutine[Any, Any, T]) -> T:
        """Run `work` (a worker's sweep, a read of the store) on the server's event loop:
        the store's SQLite turn is that loop's, and a second loop taking it would race
        the server's own requests and heartbeats."""
        loop = self.uvicorn.servers[0].get_loop()
        return asyncio.run_coroutine_threadsafe(work, loop).result(60)

    @property
    def url(self) -> str:
        return self.server.url

    def pay(self, token: str, order_id: str, **extra: Any) -> dict[str, Any]:
        with self.server.client() as api:
            answer = api.post(
                "/v1/payments",
                json={**BODY, "payment_token": token, "order_id": order_id, **extra},
            )
        assert answer.status_code == 201, answer.text
        paid: dict[str, Any] = answer.json()
        return paid

    def browser(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, follow_redirects=False, timeout=30)


@contextlib.contextmanager
def shop_server(
    db: Path,
    clock: ManualClock,
    config: dict[str, Any] = SHOP_CONFIG,
    sock: socket.socket | None = None,
    **settings: Any,
) -> Iterator[Shop]:
    """The shop's server on `sock` if given (its URL known before it starts)."""
    url = f"sqlite:///{db}"
    runtime = build_runtime(
        Settings(database_url=url, link_key=LINK_KEY, **settings),
        PaymendConfig.model_validate(config),
        clock=clock,
    )
    merchant, key = runtime.store.run_sync(
        lambda conn: merchants.create(
            conn, MerchantId("mer_shop"), "shop", NOW, {"support_contact": SUPPORT}
        )
    )
    uv, thread, base = serve_asgi(create_app(runtime), runtime.settings, sock=sock)
    try:
        yield Shop(Server(base, runtime, key, merchant.id), clock, uv)
    finally:
        uv.should_exit = True
        thread.join(10)
        runtime.close()


@pytest.fixture(scope="package")
def shop(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    db = tmp_path_factory.mktemp("customers") / "paymend.db"
    shutil.copy(sqlite_template, db)
    with shop_server(db, ManualClock(NOW + timedelta(hours=1))) as running:
        yield running
