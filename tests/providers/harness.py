"""What every connector's end-to-end test sets up: the provider's real peer (a simulator
protocol face, or an address such as localstripe's) on its own 127.0.0.1 port, the
channel's secrets in the environment, a runtime built from a `paymend.yaml`-shaped
configuration, and paymend's real HTTP API on a port the face's notifications reach.

A provider's test module says only what differs: its face, its channel's options (which
may name the face's URL and paymend's notification URL), its secrets, and a payment's
body; `connected` serves both, yields a `Connected`, and stops both afterwards.

`charging_timeout_in_virtual_time` runs a connector and its face in-process instead, as
the lab does: the engine on the virtual-time loop, HTTP through `httpx.ASGITransport`
(no sockets), so the face's latencies and a charging timeout cost no real time and the
connector's wire code is measured too. Its `InProcess` names what differs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import yaml
from click.testing import CliRunner

from paymend.api.app import create_app
from paymend.cli import main
from paymend.config import PaymendConfig, Settings, secret_env_name
from paymend.domain.clock import Clock
from paymend.domain.money import Money
from paymend.domain.payment import Attempt, AttemptStatus, Customer, PaymentStatus
from paymend.engine.clock import LoopClock
from paymend.engine.commands import PayCommand
from paymend.engine.runtime import build_runtime
from paymend.engine.virtual_time import run_virtual
from paymend.providers.base import Provider
from paymend.providers.simulator import SimulatedProvider, SimulatorSettings
from paymend.store.database import Store
from tests.api.conftest import Server, bound_socket, serve_asgi
from tests.helpers import WAIT_S, make_merchant, service

# (the face's URL, paymend's notification URL) -> the channel's entry in paymend.yaml
Options = Callable[[str, str], dict[str, Any]]
# the engine of a test about what a provider answers, not about its timeout: a close and
# the status query after it (two signed round trips) must not turn unknown because a
# loaded machine took longer than the default set-up's 500 ms
PATIENT = {"provider_timeout": "5s", "checkout_deadline": "10s"}


@dataclass
class Connected:
    """paymend's API and the provider's peer, both serving. `face` is the simulator's
    protocol face (None for a peer of another kind); `client` speaks to paymend's API
    as the set-up's merchant."""

    server: Server
    face: Any
    client: httpx.Client
    config: dict[str, Any]
    face_url: str
    channel: str
    body: dict[str, Any]
    uvicorn: uvicorn.Server  # paymend's, serving on its own event loop

    def drain_worker(self) -> None:
        """Run the worker until nothing is due, on the server's event loop: the store's
        SQLite turn is that loop's, and a second loop taking it would race the server."""
        loop = self.uvicorn.servers[0].get_loop()
        asyncio.run_coroutine_threadsafe(self.server.runtime.worker.drain(), loop).result(60)

    @property
    def notify_path(self) -> str:
        return f"/v1/providers/{self.channel}/notifications"

    def create(self, body: Mapping[str, Any], key: str | None = None) -> dict[str, Any]:
        """POST /v1/payments with `body` (under Idempotency-Key `key`); it must be 201."""
        headers = {"Idempotency-Key": key} if key else {}
        created = self.client.post("/v1/payments", json=dict(body), headers=headers)
        assert created.status_code == 201, created.text
        payment: dict[str, Any] = created.json()
        return payment

    def pay(self, token: str | None, order: str, **fields: Any) -> dict[str, Any]:
        """A payment of the set-up's body with this token (None: without one) and order."""
        body = {**self.body, "payment_token": token, "order_id": order, **fields}
        if token is None:
            del body["payment_token"]
        return self.create(body, order)

    def payment(self, pid: str) -> dict[str, Any]:
        got: dict[str, Any] = self.client.get(f"/v1/payments/{pid}").json()
        return got

    def act(self, pid: str, action: str, body: Mapping[str, Any] | None = None) -> httpx.Response:
        """POST /v1/payments/{pid}/{action} (cancel, confirm), with a JSON body if given."""
        path = f"/v1/payments/{pid}/{action}"
        return (
            self.client.post(path, json=dict(body)) if body is not None else self.client.post(path)
        )

    def post_notification(self, content: bytes, headers: Mapping[str, str]) -> httpx.Response:
        return httpx.post(
            self.server.url + self.notify_path,
            content=content,
            headers=dict(headers),
            timeout=WAIT_S,
        )

    def reconcile(self, tmp_path: Path) -> tuple[int, dict[str, Any]]:
        """`paymend reconcile --json` over this configuration: its exit code and report."""
        path = tmp_path / "paymend.yaml"
        path.write_text(yaml.safe_dump(self.config))
        env = {
            "PAYMEND_CONFIG": str(path),
            "PAYMEND_DATABASE_URL": self.server.runtime.settings.database_url,
        }
        result = CliRunner().invoke(main, ["reconcile", "--json"], env=env)
        report: dict[str, Any] = json.loads(result.output.strip().splitlines()[-1])
        return result.exit_code, report


@contextlib.contextmanager
def connected(
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    *,
    channel: str,
    options: Options,
    credentials: Mapping[str, str],
    body: Mapping[str, Any],
    face: Any = None,
    face_url: str | None = None,
    fallback: str | None = None,
    engine: Mapping[str, Any] | None = None,
) -> Iterator[Connected]:
    """Serve `face` (an ASGI app with `release()`) unless the peer is at `face_url`, set
    the channel's secrets, build the runtime with `channel` (and a simulator channel for
    method `fallback`, routed second), serve paymend's API, and stop all at the end."""
    face_server = face_thread = None
    if face is not None:
        face_server, face_thread, face_url = serve_asgi(face, Settings(), lifespan="on")
    assert face_url is not None, "a face to serve or the peer's URL"
    sock = bound_socket()
    notify_url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1/providers/{channel}/notifications"
    for name, value in credentials.items():
        monkeypatch.setenv(secret_env_name(channel, name), value)
    providers: dict[str, Any] = {channel: options(face_url, notify_url)}
    if fallback is not None:
        providers["sim_a"] = {"type": "simulator", "methods": [fallback]}
    config = {
        "seed": 1,
        "providers": providers,
        "routing": list(providers),
        "engine": dict(engine or {"provider_timeout": "500ms", "checkout_deadline": "3s"}),
    }
    runtime = build_runtime(Settings(database_url=db_url), PaymendConfig.model_validate(config))
    merchant_id, key = make_merchant(runtime.store)
    uv, thread, url = serve_asgi(create_app(runtime), runtime.settings, sock=sock)
    server = Server(url, runtime, key, merchant_id)
    try:
        with server.client() as client:
            yield Connected(server, face, client, config, face_url, channel, dict(body), uv)
    finally:
        if face is not None:
            face.release()
        uv.should_exit = True
        if face_server is not None:
            face_server.should_exit = True
        thread.join(10)
        if face_thread is not None:
            face_thread.join(10)
        runtime.close()


@dataclass(frozen=True)
class InProcess:
    """One connector in front of its simulator face, in-process: what differs between
    providers. `face` puts the face (an ASGI app with `channel` and `release()`) in front
    of a simulated channel; `connector` builds the channel's connector over a transport;
    `charged_as` is the key the face's ledger books an attempt's charge under."""

    channel: str
    method: str
    currency: str
    face: Callable[[SimulatedProvider], Any]
    connector: Callable[[httpx.AsyncBaseTransport, Clock], Provider]
    charged_as: Callable[[Attempt], str]
    locale: str = "zh-CN"

    def command(self, merchant_id: Any, token: str, order: str) -> PayCommand:
        return PayCommand(
            merchant_id=merchant_id,
            order_id=order,
            amount=Money(8888, self.currency),
            method=self.method,
            token=token,
            customer=Customer("c1", self.locale, None, None),
            trace_id="0af7651916cd43dd8448eb211c80319c",
        )


def charging_timeout_in_virtual_time(sqlite_url: str, setup: InProcess) -> None:
    """A payment that succeeds, then one whose call times out but charges: both end
    succeeded, the second after a status query found its one charge, with the provider
    timeout passed in virtual time (never waited for)."""
    store = Store(sqlite_url, inline=True)
    mid, _ = make_merchant(store)

    async def scenario() -> tuple[list[PaymentStatus], list[AttemptStatus], float, int]:
        clock = LoopClock()
        settings = SimulatorSettings(
            methods=(setup.method,), latency_p50_ms=300, latency_p99_ms=900
        )
        face = setup.face(SimulatedProvider(f"{setup.channel}_face", settings, clock))
        connector = setup.connector(httpx.ASGITransport(app=face), clock)
        engine = service(store, {setup.channel: connector}, clock, timeout_s=5.0, deadline_s=20.0)
        start = clock.monotonic()
        ok = await engine.pay(setup.command(mid, "sim_approve", "o-1"))
        slow = await engine.pay(setup.command(mid, "sim_timeout_charged", "o-2"))
        elapsed = clock.monotonic() - start
        face.release()
        charges = len(face.channel.ledger.charged(setup.charged_as(slow.attempts[0])))
        statuses = [ok.payment.status, slow.payment.status]
        return statuses, [a.status for a in slow.attempts], elapsed, charges

    try:
        statuses, attempts, virtual, charges = run_virtual(scenario())
    finally:
        store.close()
    assert statuses == [PaymentStatus.SUCCEEDED, PaymentStatus.SUCCEEDED]
    assert attempts == [AttemptStatus.SUCCEEDED]  # the query found the charge: no second
    assert charges == 1
    assert virtual >= 5.0  # the provider timeout passed, in virtual time, not waited for
