"""Relaying outbox events to merchants' webhook endpoints, at least once.

The relay turns each unpublished event into a delivery (one per endpoint) and a job, in
one transaction with marking the event published. A delivery job sends the signed event
through the webhook channel (notify/webhook_channel.py, an HTTPS POST); anything but a
delivery schedules the next try, for up to three days. Every try is logged in
`webhook_attempts`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime

from paymend.domain.clock import Clock
from paymend.domain.events import WEBHOOK_EVENTS
from paymend.engine.events import envelope
from paymend.engine.ids import IdFactory
from paymend.engine.ops_events import OpsEventKind, raise_event
from paymend.notify import webhooks as signing
from paymend.notify.channel import Channel, Message
from paymend.notify.ops_routes import masked_url
from paymend.notify.webhook_channel import WebhookChannel
from paymend.observability import get_logger
from paymend.store import jobs, outbox
from paymend.store import webhooks as repo
from paymend.store.database import Connection, Store
from paymend.store.outbox import Event

Consumer = Callable[[Connection, Sequence[Event], datetime], None]
"""Another reader of the outbox (customer notices): runs in the relay's transaction."""

log = get_logger("paymend.webhooks")
# events per transaction. On SQLite a transaction runs on the event loop and holds it:
# 500 events held every request in flight for 7-16 ms once a second at 400 payments/s,
# the slowest hundredth of requests; 100 hold it for about 2 ms
RELAY_BATCH = 100
RELAY_BATCHES = 100  # per relay() call: a sweep's share before the rest of its work
_WEBHOOK_TYPES = frozenset(e.value for e in WEBHOOK_EVENTS)


class WebhookSender:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        ids: IdFactory,
        channel: Channel | None = None,
        consumers: Sequence[Consumer] = (),
    ) -> None:
        """`channel`: what carries a delivery (notify/channel.py): HTTPS by default.
        `consumers`: called with each batch in the transaction that publishes it."""
        self.consumers = tuple(consumers)
        self.store = store
        self.clock = clock
        self.ids = ids
        self.channel: Channel = channel or WebhookChannel()
        self.behind = False  # the last relay stopped with a full batch: more are waiting

    async def relay(self, limit: int = RELAY_BATCH, max_batches: int = RELAY_BATCHES) -> int:
        """Publish unpublished events: a delivery and a job for each subscribed one.
        Batch after batch while one comes back full, so the relay keeps pace with the
        engine, letting the requests waiting on the event loop in between; after
        `max_batches` it stops with `behind` set, and the worker sweeps again at once
        (its other duties get their turn in between)."""
        created = 0
        for _ in range(max_batches):
            published, made = await self.store.run(lambda conn: self._relay(conn, limit))
            created += made
            self.behind = published == limit
            if not self.behind:
                break
            await self.clock.sleep(0)  # the requests' turn: a batch on SQLite held the loop
        return created

    def _relay(self, conn: Connection, limit: int) -> tuple[int, int]:
        """One batch in one transaction: (events published, deliveries created)."""
        now = self.clock.now()
        # payloads only for the other readers of the batch: routing needs none
        full: list[Event] = []
        batch: Sequence[Event | outbox.Head]
        if self.consumers:
            batch = full = outbox.unpublished(conn, limit)
        else:
            batch = outbox.unpublished_heads(conn, limit)
        if not batch:
            return 0, 0
        settings = repo.merchant_settings(conn, {e.merchant_id for e in batch})
        deliveries = []
        for event in batch:
            url = (settings.get(event.merchant_id) or {}).get("webhook_url")
            if url and event.type in _WEBHOOK_TYPES:
                deliveries.append((self.ids.new("whd"), event, url))
        repo.create_many(conn, deliveries, now)
        jobs.enqueue_many(
            conn,
            jobs.JobKind.DELIVER_WEBHOOK,
            [(self.ids.new("job"), delivery_id) for delivery_id, _e, _u in deliveries],
            now,
            now,
        )
        for consume in self.consumers:
            consume(conn, full, now)
        outbox.mark_published(conn, [e.id for e in batch], now)
        return len(batch), len(deliveries)

    async def deliver(self, delivery_id: str) -> float | None:
        """Try once. None when finished (delivered or given up); else seconds to wait."""
        due = await self.store.run(lambda conn: repo.due(conn, delivery_id))
        if due is None:
            return None
        delivery, event = due.delivery, due.event
        body = json.dumps(
            envelope(event),
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode()
        now = self.clock.now()
        signature = signing.sign(body, due.secret, int(now.timestamp()))
        message = Message(event.id, delivery.url, body, {signing.SIGNATURE_HEADER: signature})
        start = self.clock.monotonic()
        sent = await self.channel.send(message)
        latency = round((self.clock.monotonic() - start) * 1000)
        ok, code, error = sent.delivered, sent.code, sent.error
        tries = delivery.tries + 1
        wait = None
        if not ok and sent.retryable:
            wait = signing.next_try_in(tries, now - delivery.created_at)
        status = repo.DeliveryStatus.DELIVERED if ok else repo.DeliveryStatus.PENDING
        if not ok and wait is None:
            status = repo.DeliveryStatus.FAILED
            why = "webhook given up after 3 days" if sent.retryable else "webhook cannot arrive"
            log.warning(
                "ops_alert",
                reason=why,
                delivery_id=delivery_id,
                url=delivery.url,
            )

        def record(conn: Connection) -> None:
            repo.record_try(
                conn,
                delivery_id,
                now,
                tries=tries,
                status_code=code,
                error=error,
                latency_ms=latency,
                status=status,
            )
            if status is repo.DeliveryStatus.FAILED:
                raise_event(
                    conn,
                    now,
                    OpsEventKind.WEBHOOK_GIVEN_UP,
                    delivery_id,
                    f"{why}: {masked_url(delivery.url)}",
                    delivery_id=delivery_id,
                    event_id=event.id,
                    event_type=event.type,
                    status_code=code,
                )

        await self.store.run(record)
        log.info(
            "webhook_delivery",
            delivery_id=delivery_id,
            event_id=event.id,
            status_code=code,
            error=error,
            latency_ms=latency,
            tries=tries,
        )
        return wait

    async def close(self) -> None:
        await self.channel.close()
