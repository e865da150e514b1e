"""SIGTERM stops paymend cleanly and soon: no new connections, requests in flight
answered, the worker's long jobs cancelled and given back, the instance marked stopped,
exit status 0; within the checkout deadline plus a few seconds.

Real processes on SQLite and PostgreSQL. Payments with the `sim_timeout` token hang
until the provider timeout (10 s here, far above the 2 s checkout deadline), so the
worker is inside a 10 s call when the signal comes.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from paymend.store.tables import idempotency_keys, instances, jobs, payments
from tests.serve_process import Paymend, free_port, merchant_key, rows, write_config
from tests.serve_process import until as poll

DEADLINE_S = 2.0
MARGIN_S = 3.0  # "a few seconds" after the deadline
WAIT_S = 20.0  # bound on waiting for a process to reach a state
PAYMENT = {"amount": 1999, "currency": "CNY", "method": "card", "payment_token": "sim_timeout"}


def config(tmp_path: Path) -> Path:
    return write_config(
        tmp_path / "paymend.yaml",
        {
            "seed": 2,
            "providers": {
                "sim_a": {"type": "simulator", "methods": ["card"]},
                "sim_b": {"type": "simulator", "methods": ["card"]},
            },
            "routing": ["sim_a", "sim_b"],
            "engine": {"provider_timeout": "10s", "checkout_deadline": f"{DEADLINE_S}s"},
            "worker": {"interval": "200ms", "stop_grace": "1s"},
        },
    )


def until(what: str, check: Callable[[], Any]) -> Any:
    return poll(what, check, WAIT_S)


def instance_of(db_url: str, pid: int) -> Any:
    found = rows(db_url, sa.select(instances).where(instances.c.pid == pid))
    return found[0] if found else None


def jobs_held_by(db_url: str, instance_id: str) -> list[Any]:
    return rows(
        db_url, sa.select(jobs).where(jobs.c.owner == instance_id, jobs.c.lease_until.is_not(None))
    )


async def pay(url: str, key: str, orders: list[str]) -> list[httpx.Response]:
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
        return list(
            await asyncio.gather(
                *(
                    client.post(
                        "/v1/payments",
                        json={**PAYMENT, "order_id": order},
                        headers={"Idempotency-Key": f"key-{order}"},
                    )
                    for order in orders
                )
            )
        )


def refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return True
    return False


def test_sigterm_stops_serve_cleanly_within_the_checkout_deadline(
    db_url: str, tmp_path: Path
) -> None:
    key = merchant_key(db_url)
    port = free_port()
    server = Paymend("serve", db_url, config(tmp_path), tmp_path / "serve.log", port)
    try:
        server.wait_ready()
        me = until("instance registered", lambda: instance_of(db_url, server.pid))
        first = asyncio.run(pay(server.url, key, ["o-1", "o-2"]))
        assert [r.json()["status"] for r in first] == ["processing", "processing"]
        until("the worker inside a long job", lambda: jobs_held_by(db_url, me.id))

        async def sigterm_while_paying() -> tuple[list[httpx.Response], bool, float]:
            paying = asyncio.create_task(pay(server.url, key, ["o-3", "o-4", "o-5"]))
            while len(rows(db_url, sa.select(payments.c.id))) < 5:  # all three in flight
                await asyncio.sleep(0.02)
            assert not refuses_connections(port)
            sent = server.terminate()
            refused = False
            while not paying.done() and not refused:
                refused = refuses_connections(port)
                await asyncio.sleep(0.02)
            refused_while_busy = refused and not paying.done()
            return await paying, refused_while_busy, sent

        answers, refused_while_busy, sent = asyncio.run(sigterm_while_paying())
        code = server.wait(DEADLINE_S + MARGIN_S + 1)
        took = time.monotonic() - sent
    finally:
        server.close()
    assert code == 0
    assert took < DEADLINE_S + MARGIN_S, f"stopped {took:.1f}s after SIGTERM"
    assert refused_while_busy, "new connections were accepted while stopping"
    assert [(r.status_code, r.json()["status"]) for r in answers] == [(201, "processing")] * 3
    stopped = instance_of(db_url, server.pid)
    assert (stopped.stop_reason, stopped.stopped_at is not None) == ("stopped", True)
    assert jobs_held_by(db_url, stopped.id) == []  # released: another worker takes them now
    assert {r.status for r in rows(db_url, sa.select(idempotency_keys))} == {"completed"}


def test_sigterm_stops_api_and_worker_processes_cleanly(db_url: str, tmp_path: Path) -> None:
    key = merchant_key(db_url)
    port = free_port()
    path = config(tmp_path)
    api = Paymend("api", db_url, path, tmp_path / "api.log", port)
    worker = Paymend("worker", db_url, path, tmp_path / "worker.log")
    try:
        api.wait_ready()
        answers = asyncio.run(pay(api.url, key, ["o-1", "o-2"]))
        assert [r.json()["status"] for r in answers] == ["processing", "processing"]
        mine = until("the worker registered", lambda: instance_of(db_url, worker.pid))
        held = until("the worker inside a long job", lambda: jobs_held_by(db_url, mine.id))
        sent = worker.terminate()
        worker_code = worker.wait(DEADLINE_S + MARGIN_S + 1)
        worker_took = time.monotonic() - sent
        sent = api.terminate()
        api_code = api.wait(DEADLINE_S + MARGIN_S + 1)
        api_took = time.monotonic() - sent
    finally:
        worker.close()
        api.close()
    assert (worker_code, api_code) == (0, 0)
    assert worker_took < MARGIN_S, f"the worker stopped {worker_took:.1f}s after SIGTERM"
    assert api_took < MARGIN_S, f"the API stopped {api_took:.1f}s after SIGTERM"
    assert jobs_held_by(db_url, mine.id) == []
    released = rows(db_url, sa.select(jobs).where(jobs.c.id.in_([j.id for j in held])))
    assert {(j.status, j.owner, j.lease_until) for j in released} == {("pending", None, None)}
    for process in (api, worker):
        row = instance_of(db_url, process.pid)
        assert (row.role, row.stop_reason) == (process.command, "stopped")
