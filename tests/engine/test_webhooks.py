"""Webhooks reach a real local endpoint, signed, after it comes back: none lost, and a
redelivery is recognisable by its event id."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from paymend.domain.events import EventType
from paymend.domain.ids import MerchantId
from paymend.engine.ids import IdFactory
from paymend.engine.webhooks import WebhookSender
from paymend.engine.worker import Worker
from paymend.notify import webhooks as signing
from paymend.store import merchants, outbox
from paymend.store.database import Store
from paymend.store.tables import jobs as jobs_table
from paymend.store.tables import webhook_attempts, webhook_deliveries
from tests import local_server
from tests.engine.test_pay import pay_cmd
from tests.helpers import NOW, ManualClock, service, simulator
from tests.local_server import free_port

SECRET = "whsec_test_secret"


class Receiver:
    """A shop's webhook endpoint: verifies, answers 500 to the first N calls (after
    recording them, as a shop whose answer got lost), then 200; applies each event once."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.calls: list[str] = []
        self.applied: dict[str, dict[str, Any]] = {}
        self.bad_signatures = 0

    async def endpoint(self, request: Request) -> Response:
        body = await request.body()
        try:
            # paymend signs with its (here: simulated) clock: no freshness check here
            header = request.headers[signing.SIGNATURE_HEADER]
            signing.verify(body, header, SECRET, time.time(), tolerance_s=10**10)
        except signing.InvalidSignature:
            self.bad_signatures += 1
            return Response(status_code=400)
        event = json.loads(body)
        assert request.headers[signing.EVENT_ID_HEADER] == event["id"]
        self.calls.append(event["id"])
        self.applied.setdefault(event["id"], event)  # idempotent by event id
        if len(self.calls) <= self.fail_first:
            return Response(status_code=500)
        return Response(status_code=200)


def start(receiver: Receiver, port: int) -> tuple[uvicorn.Server, threading.Thread]:
    app = Starlette(routes=[Route("/hooks", receiver.endpoint, methods=["POST"])])
    return local_server.start(app, port)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url, inline=True)
    yield s
    s.close()


def test_webhooks_arrive_signed_after_the_endpoint_comes_back(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/hooks"
    mid = MerchantId("mer_hooks")
    store.run_sync(
        lambda c: merchants.create(
            c, mid, "hooks", NOW, {"webhook_url": url, "webhook_secret": SECRET}
        )
    )
    receiver = Receiver(fail_first=1)

    async def scenario() -> None:
        clock = ManualClock()
        svc = service(store, {"sim_a": simulator(clock=None)}, clock)
        ok = await svc.pay(pay_cmd(mid, order="o-1"))
        bad = await svc.pay(pay_cmd(mid, "sim_decline_insufficient_funds", order="o-2"))
        worker = Worker(svc)
        await worker.sweep()  # endpoint down: connection refused, retry scheduled
        assert receiver.calls == []
        server, thread = start(receiver, port)
        try:
            for _ in range(6):  # an hour of the retry schedule, in a moment
                clock.advance(600)
                await worker.sweep()
        finally:
            server.should_exit = True
            await asyncio.to_thread(thread.join, 10)
        assert set(receiver.applied) == set(receiver.calls)  # nothing but real events
        types = sorted(e["type"] for e in receiver.applied.values())
        assert types == ["payment.failed", "payment.succeeded"]
        failed = next(e for e in receiver.applied.values() if e["type"] == "payment.failed")
        assert failed["data"]["payment_id"] == bad.payment.id
        assert failed["data"]["order_advice"]["keep_order_open"] is True
        assert any(e["data"]["payment_id"] == ok.payment.id for e in receiver.applied.values())
        assert len(receiver.calls) == 3  # one answer lost (500): redelivered, same event id
        assert receiver.bad_signatures == 0

    asyncio.run(scenario())
    rows = store.run_sync(lambda c: c.execute(sa.select(webhook_deliveries)).all())
    assert {r.status for r in rows} == {"delivered"}
    logged = store.run_sync(lambda c: c.execute(sa.select(webhook_attempts)).all())
    assert len(logged) == 5  # 2 refused + 1 answered 500 + 2 delivered: every try logged
    assert sum(1 for r in logged if r.error and "Connect" in r.error) == 2


def test_signatures_verify_and_tampering_is_caught() -> None:
    body = b'{"id":"evt_1"}'
    header = signing.sign(body, SECRET, 1_700_000_000)
    assert signing.verify(body, header, SECRET, now=1_700_000_100) == 1_700_000_000
    for bad_body, bad_secret, now in (
        (b'{"id":"evt_2"}', SECRET, 1_700_000_100),
        (body, "whsec_other", 1_700_000_100),
        (body, SECRET, 1_700_000_000 + signing.TOLERANCE_S + 1),  # a replay
    ):
        with pytest.raises(signing.InvalidSignature):
            signing.verify(bad_body, header, bad_secret, now=now)
    with pytest.raises(signing.InvalidSignature):
        signing.verify(body, "garbage", SECRET, now=1)


def test_the_retry_schedule_spans_three_days() -> None:
    total = 0.0
    tries = 1
    while total + signing.next_wait(tries) <= signing.GIVE_UP_AFTER.total_seconds():
        total += signing.next_wait(tries)
        tries += 1
    assert tries > 10 and total > 2 * 86400
    assert signing.next_try_in(1, timedelta(0)) == 10
    assert signing.next_try_in(tries, timedelta(seconds=total)) is None  # never past 3 days


def test_one_sweep_relays_a_backlog_of_many_batches(store: Store) -> None:
    """No fixed ceiling: the relay goes batch after batch while one comes back full, so
    a burst of payments is published in one sweep, not 200 events a second."""
    mid = MerchantId("mer_burst")
    hooks = {"webhook_url": "http://127.0.0.1:9/hooks", "webhook_secret": SECRET}
    store.run_sync(lambda c: merchants.create(c, mid, "burst", NOW, hooks))
    now = NOW

    def backlog(conn: sa.Connection) -> None:
        for i in range(1_250):  # two and a half batches of events
            outbox.add(conn, f"evt_{i:05d}", mid, EventType.PAYMENT_SUCCEEDED, f"pay_{i}", {}, now)

    store.run_sync(backlog)

    async def sweep() -> WebhookSender:
        sender = WebhookSender(store, ManualClock(), IdFactory())
        assert await sender.relay(limit=500) == 1_250  # a delivery for each
        assert not sender.behind
        return sender

    asyncio.run(sweep())
    assert store.run_sync(lambda c: len(outbox.unpublished(c, 10_000))) == 0
    kinds = store.run_sync(lambda c: c.execute(sa.select(jobs_table.c.kind)).scalars().all())
    assert kinds == ["deliver_webhook"] * 1_250


def test_a_relay_that_stops_at_its_batch_budget_says_it_is_behind(store: Store) -> None:
    mid = MerchantId("mer_behind")
    store.run_sync(lambda c: merchants.create(c, mid, "behind", NOW))

    def backlog(conn: sa.Connection) -> None:
        for i in range(30):
            outbox.add(conn, f"evt_{i:03d}", mid, EventType.PAYMENT_CREATED, "pay_1", {}, NOW)

    store.run_sync(backlog)
    sender = WebhookSender(store, ManualClock(), IdFactory())
    assert asyncio.run(sender.relay(limit=10, max_batches=2)) == 0  # no endpoint: no delivery
    assert sender.behind  # 10 left: the worker sweeps again at once
    assert store.run_sync(lambda c: len(outbox.unpublished(c, 100))) == 10
    asyncio.run(sender.relay(limit=10, max_batches=2))
    assert not sender.behind
