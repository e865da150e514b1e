"""Relaying outbox events to merchants' webhook endpoints, at least once.

The relay turns each unpublished event into a delivery (one per endpoint) and a job, in
one transaction with marking the event published. A delivery job POSTs the signed event;
any answer but 2xx, a timeout or a refused connection schedules the next try, for up to
three days. Every try is logged in `webhook_attempts`.
"""

from __future__ import annotations

import json
import time

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paymend.domain.clock import Clock
from paymend.domain.events import WEBHOOK_EVENTS
from paymend.engine.events import envelope
from paymend.engine.ids import IdFactory
from paymend.notify import webhooks as signing
from paymend.observability import get_logger
from paymend.store import jobs, outbox
from paymend.store.database import Store
from paymend.store.tables import events, merchants, webhook_attempts, webhook_deliveries

log = get_logger("paymend.webhooks")
TIMEOUT_S = 10.0


class WebhookSender:
    def __init__(self, store: Store, clock: Clock, ids: IdFactory) -> None:
        self.store = store
        self.clock = clock
        self.ids = ids
        self._client: httpx.AsyncClient | None = None

    async def relay(self, limit: int = 200) -> int:
        """Publish unpublished events: a delivery and a job for each subscribed one."""
        now = self.clock.now()

        def write(conn: Connection) -> int:
            batch = outbox.unpublished(conn, limit)
            if not batch:
                return 0
            settings = {
                r.id: r.settings
                for r in conn.execute(
                    sa.select(merchants.c.id, merchants.c.settings).where(
                        merchants.c.id.in_({e.merchant_id for e in batch})
                    )
                )
            }
            created = 0
            for event in batch:
                url = (settings.get(event.merchant_id) or {}).get("webhook_url")
                if url and event.type in {e.value for e in WEBHOOK_EVENTS}:
                    delivery_id = self.ids.new("whd")
                    conn.execute(
                        webhook_deliveries.insert(),
                        {
                            "id": delivery_id,
                            "event_id": event.id,
                            "merchant_id": event.merchant_id,
                            "url": url,
                            "status": "pending",
                            "tries": 0,
                            "created_at": now,
                        },
                    )
                    jobs.enqueue(
                        conn,
                        self.ids.new("job"),
                        jobs.JobKind.DELIVER_WEBHOOK,
                        delivery_id,
                        now,
                        now,
                    )
                    created += 1
            outbox.mark_published(conn, [e.id for e in batch], now)
            return created

        return await self.store.run(write)

    async def deliver(self, delivery_id: str) -> float | None:
        """Try once. None when finished (delivered or given up); else seconds to wait."""

        def load(conn: Connection) -> tuple[sa.Row, sa.Row, str] | None:  # type: ignore[type-arg]
            d = conn.execute(
                sa.select(webhook_deliveries).where(webhook_deliveries.c.id == delivery_id)
            ).first()
            if d is None or d.status != "pending":
                return None
            e = conn.execute(sa.select(events).where(events.c.id == d.event_id)).one()
            m = conn.execute(
                sa.select(merchants.c.settings).where(merchants.c.id == d.merchant_id)
            ).one()
            return d, e, str((m.settings or {}).get("webhook_secret", ""))

        loaded = await self.store.run(load)
        if loaded is None:
            return None
        delivery, event, secret = loaded
        body = json.dumps(
            envelope(outbox.from_row(event)),
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode()
        now = self.clock.now()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "paymend-webhooks/1",
            signing.EVENT_ID_HEADER: event.id,
            signing.SIGNATURE_HEADER: signing.sign(body, secret, int(now.timestamp())),
        }
        status: int | None = None
        error: str | None = None
        start = time.perf_counter()
        try:
            response = await self._http().post(delivery.url, content=body, headers=headers)
            status = response.status_code
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        latency = round((time.perf_counter() - start) * 1000)
        ok = status is not None and 200 <= status < 300
        tries = delivery.tries + 1
        wait = None if ok else signing.next_try_in(tries, now - delivery.created_at)
        if not ok and wait is None:
            log.warning(
                "ops_alert",
                reason="webhook given up after 3 days",
                delivery_id=delivery_id,
                url=delivery.url,
            )

        def record(conn: Connection) -> None:
            conn.execute(
                webhook_attempts.insert(),
                {
                    "delivery_id": delivery_id,
                    "at": now,
                    "status_code": status,
                    "error": error,
                    "latency_ms": latency,
                },
            )
            values: dict[str, object] = {
                "tries": tries,
                "last_status_code": status,
                "last_error": error,
            }
            if ok:
                values.update(status="delivered", delivered_at=now)
            elif wait is None:
                values.update(status="failed")
            conn.execute(
                webhook_deliveries.update()
                .where(webhook_deliveries.c.id == delivery_id)
                .values(**values)
            )

        await self.store.run(record)
        log.info(
            "webhook_delivery",
            delivery_id=delivery_id,
            event_id=event.id,
            status_code=status,
            error=error,
            latency_ms=latency,
            tries=tries,
        )
        return wait

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=TIMEOUT_S, follow_redirects=False)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
