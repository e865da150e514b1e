"""SIGKILL `paymend serve` under load, restart it, and prove nobody pays twice and
everything settles in seconds (issue 11).

A real server process (SQLite file or PostgreSQL) takes 200 payments at concurrency 32
over HTTP, each with an Idempotency-Key; a share hang until the provider timeout,
charge on a timeout, or lose their response after charging. It is killed after ~70
answers and started again. Then:

- the same request with the same key answers with its payment (or runs, if the dead
  request created none); no key answers 409 in-progress once its owner is known dead;
- the same order with a new key is refused (`order_already_paid`,
  `order_payment_in_progress`) with the order's payment, or, when that payment failed,
  pays anew; no order ever has two succeeded payments;
- every payment is final (or requires_action) within 30 s of the restart;
- the simulated providers' ledger agrees with the store: no customer charged twice.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from paymend.providers.simulator import ChargeState
from paymend.providers.simulator_ledger import SqliteLedger
from paymend.store.tables import payments
from tests.serve_process import Paymend, free_port, merchant_key, write_config

ORDERS = 200
CONCURRENCY = 32
KILL_AFTER = 70  # answers
RECOVERY_S = 30.0  # every payment final this long after the restart
FINAL = {"succeeded", "failed", "canceled", "requires_action", "refunded", "partially_refunded"}


def token(i: int) -> str:
    """What the provider does with order i: a fifth hang, some of those charge anyway."""
    kinds = {
        0: "sim_timeout",
        1: "sim_timeout_charged",
        2: "sim_lost_response",
        3: "sim_decline_insufficient_funds",
        4: "sim_timeout_charged",
    }
    return kinds.get(i % 10, f"tok_card_{i}")


def body(i: int, payment_token: str | None = None) -> dict[str, Any]:
    return {
        "amount": 1000 + i,
        "currency": "CNY",
        "method": "card",
        "order_id": f"order-{i}",
        "payment_token": payment_token or token(i),
        "customer": {"id": f"c-{i}"},
    }


@dataclass
class Sent:
    status: int | None = None  # None: no answer (killed, or never reached the server)
    payload: dict[str, Any] = field(default_factory=dict)


async def send_all(
    url: str, key: str, requests: list[tuple[str, dict[str, Any]]], on_answer: Any = None
) -> dict[str, Sent]:
    """POST each (idempotency key, body) at CONCURRENCY; a transport error is no answer."""
    gate = asyncio.Semaphore(CONCURRENCY)
    results: dict[str, Sent] = {}
    limits = httpx.Limits(max_connections=CONCURRENCY)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30, limits=limits) as c:

        async def one(idem: str, payload: dict[str, Any]) -> None:
            async with gate:
                try:
                    r = await c.post(
                        "/v1/payments", json=payload, headers={"Idempotency-Key": idem}
                    )
                except httpx.TransportError:
                    results[idem] = Sent()
                    return
                results[idem] = Sent(
                    r.status_code, {**r.json(), "_replayed": "idempotent-replayed" in r.headers}
                )
                if on_answer is not None:
                    on_answer()

        await asyncio.gather(*(one(k, b) for k, b in requests))
    return results


def store_payments(db_url: str) -> list[Any]:
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.select(payments)).all())
    finally:
        engine.dispose()


def test_a_killed_server_recovers_in_seconds_and_charges_nobody_twice(
    db_url: str, tmp_path: Path
) -> None:
    ledger_path = tmp_path / "ledger.sqlite"
    config = write_config(
        tmp_path / "paymend.yaml",
        {
            "seed": 11,
            "simulator": {"ledger": str(ledger_path)},
            "providers": {
                "sim_a": {
                    "type": "simulator",
                    "methods": ["card"],
                    "latency_ms": {"p50": 20, "p99": 80},
                },
                "sim_b": {
                    "type": "simulator",
                    "methods": ["card"],
                    "latency_ms": {"p50": 30, "p99": 120},
                },
            },
            "routing": ["sim_a", "sim_b"],
            "engine": {"provider_timeout": "1s", "checkout_deadline": "1500ms"},
            # the age rule stays at its default: only the owner's death settles this fast
            "worker": {"interval": "200ms"},
            "instances": {"heartbeat": "500ms", "dead_after": "3s"},
        },
    )
    key = merchant_key(db_url)
    port = free_port()
    log = tmp_path / "server.log"
    requests = [(f"key-{i}", body(i)) for i in range(ORDERS)]

    first = Paymend("serve", db_url, config, log, port)
    try:
        first.wait_ready()
        answers = 0

        def counted() -> None:
            nonlocal answers
            answers += 1
            if answers == KILL_AFTER:
                first.kill()

        before = asyncio.run(send_all(first.url, key, requests, counted))
    finally:
        first.close()
    answered = {k: s for k, s in before.items() if s.status is not None}
    assert KILL_AFTER <= len(answered) < ORDERS, len(answered)
    interrupted = [k for k, s in before.items() if s.status is None]

    second = Paymend("serve", db_url, config, log, port)
    try:
        restarted = second.started
        ready_s = second.wait_ready()
        # the same requests, same keys: every one answers with its payment
        retried = asyncio.run(send_all(second.url, key, requests))
        first_pass_s = time.monotonic() - restarted
        in_progress = [k for k, s in retried.items() if s.status == 409]
        assert not in_progress, [retried[k].payload for k in in_progress]
        assert all(s.status == 201 for s in retried.values()), retried
        for k, s in answered.items():
            assert s.status == 201, s.payload
            assert retried[k].payload["id"] == s.payload["id"] and retried[k].payload["_replayed"]
        recovered = sum(1 for k in interrupted if retried[k].payload["_replayed"])

        # every payment final within RECOVERY_S of the restart
        while True:
            open_ = [p.order_id for p in store_payments(db_url) if p.status not in FINAL]
            settled_s = time.monotonic() - restarted
            if not open_:
                break
            assert settled_s < RECOVERY_S, (
                f"{len(open_)} not final after {settled_s:.1f}s: {open_[:5]}"
            )
            time.sleep(0.2)  # polling the real server's database, bounded

        # the same orders with new keys: refused with the order's payment, or paid anew
        # (with another card) when that payment failed
        by_order = {p.order_id: p for p in store_payments(db_url)}
        again = [
            (
                f"new-{i}",
                body(i, None if by_order[f"order-{i}"].status != "failed" else f"tok_other_{i}"),
            )
            for i in range(ORDERS)
        ]
        second_try = asyncio.run(send_all(second.url, key, again))
        for i in range(ORDERS):
            earlier = by_order[f"order-{i}"]
            got = second_try[f"new-{i}"]
            if earlier.status == "failed":
                assert got.status == 201 and got.payload["status"] == "succeeded", got.payload
            else:
                assert got.status == 409, got.payload
                error = got.payload["error"]
                assert error["code"] in ("order_already_paid", "order_payment_in_progress")
                assert error["payment_id"] == earlier.id

        code = second.wait(0) if second.proc.poll() is not None else None
        assert code is None, "the server died"
        stop = second.terminate()
        assert second.wait(15) == 0
        stopped_s = time.monotonic() - stop
    finally:
        second.close()

    rows = store_payments(db_url)
    succeeded = Counter(p.order_id for p in rows if p.status in ("succeeded", "partially_refunded"))
    assert max(succeeded.values()) == 1
    assert set(succeeded) | {p.order_id for p in rows if p.status == "failed"} >= {
        f"order-{i}" for i in range(ORDERS)
    }
    assert not [p.id for p in rows if p.status not in FINAL]

    # the provider's truth: per order, what the customer is out of pocket is one payment
    ledger = SqliteLedger(ledger_path)
    try:
        charges = [c for c in ledger.all_charges() if c.state is ChargeState.CHARGED]
    finally:
        ledger.close()
    by_id = {p.id: p for p in rows}
    kept: dict[str, int] = defaultdict(int)
    for c in charges:
        assert c.payment_id in by_id, f"charge {c.reference} of no stored payment"
        kept[by_id[c.payment_id].order_id] += c.amount.minor - c.refunded
    for i in range(ORDERS):
        order = f"order-{i}"
        owed = 1000 + i if order in succeeded else 0
        assert kept.get(order, 0) == owed, (order, kept.get(order), owed)

    print(
        f"\n{db_url.split(':')[0]}: killed after {len(answered)} answers, "
        f"{len(interrupted)} unanswered ({recovered} answered from their payment on retry); "
        f"serving {ready_s:.1f}s after restart, no key ever in progress after it, the "
        f"retry of all 200 done {first_pass_s:.1f}s after restart; "
        f"every payment final {settled_s:.1f}s after restart; SIGTERM stop in {stopped_s:.1f}s"
    )
