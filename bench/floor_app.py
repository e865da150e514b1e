"""The fair floor for bench/http_load.py: the least a *correct* payment endpoint does.

Where bench/baseline_app.py inserts one row, this app does what any payment service
that keeps paymend's promises must do for `POST /v1/payments`, and nothing more:

1. validate the body with paymend's own request model (`api.schemas.PaymentIn`);
2. authenticate the bearer key (SHA-256, looked up once, then held in memory);
3. hash the request for its Idempotency-Key;
4. transaction 1, before the provider is called: claim the key (insert, linked to
   the payment), on PostgreSQL lock the order, check no other payment holds the order,
   insert the payment, its pending attempt and the `payment.created` event;
5. call the simulator, built from the same configuration as paymend's (same ledger);
6. transaction 2: the attempt's outcome, the payment's status (version checked),
   `attempt.finished` and `payment.succeeded` in one statement, and the key's stored
   answer;
7. answer 201 with the payment as JSON;
8. with `risk` (`create_app(..., risk=True)`, bench/payment_cpu.py's `floor-risk`):
   in transaction 1 also the least risk control needs since every payment gets a
   decision before any provider call: the customer's count and sum of decisions over
   a day read, one threshold applied, the decision stored with its features.

Statements are built once and written the way paymend's store writes them (compiled
once per dialect, handed to the driver's cursor: store/prepared.py; on PostgreSQL the
writes of each transaction after its reads go as one statement, `deferring`), ids and
claim tokens are made like paymend's (engine/ids.py, domain/entropy.py), rows are
paymend's own tables (the database is made by `paymend db upgrade`). On SQLite the store
work runs inline on the event loop on one connection held from transaction to
transaction (WAL, as `create_db_engine` tunes it); on PostgreSQL on a pool of threads,
since a blocking round trip would stall the loop.
It is served like `paymend serve`: `uvicorn.run`, one worker, no access log.

    python bench/floor_app.py --port P --database-url URL --config bench.yaml
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, TypeVar

import sqlalchemy as sa
from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from sqlalchemy.engine import Connection

from paymend.api.schemas import PaymentIn
from paymend.config import load_config
from paymend.domain.entropy import random_hex
from paymend.domain.masking import mask_token
from paymend.domain.money import payment_amount
from paymend.engine.channels import build_providers
from paymend.engine.clock import SystemClock
from paymend.engine.collector import spare_collector
from paymend.engine.ids import IdFactory
from paymend.providers.base import ChargeRequest, ProviderOutcome
from paymend.store import idempotency, keys, merchants
from paymend.store.deferred import deferring
from paymend.store.engines import create_db_engine, is_sqlite
from paymend.store.prepared import Prepared
from paymend.store.tables import (
    ORDER_HOLDING,
    attempts,
    events,
    idempotency_keys,
    payments,
    risk_decisions,
)

T = TypeVar("T")
PATH = "/v1/payments"

LOCK_ORDER = Prepared(sa.select(sa.func.pg_advisory_xact_lock(sa.bindparam("lock"))))
ORDER_TAKEN = Prepared(
    sa.select(payments.c.id).where(
        payments.c.merchant_id == sa.bindparam("mid"),
        payments.c.order_id == sa.bindparam("order"),
        payments.c.status.in_([sa.literal(s) for s in ORDER_HOLDING]),
    )
)
FINISH_ATTEMPT = Prepared(
    attempts.update()
    .where(attempts.c.id == sa.bindparam("aid"))
    .values(
        status=sa.bindparam("status"),
        provider_reference=sa.bindparam("ref"),
        raw_code=sa.bindparam("code"),
        raw_message=sa.bindparam("message"),
        latency_ms=sa.bindparam("latency"),
        finished_at=sa.bindparam("now"),
    )
)
FINISH_PAYMENT = Prepared(
    payments.update()
    .where(payments.c.id == sa.bindparam("pid"), payments.c.version == 0)
    .values(status=sa.bindparam("status"), version=1, updated_at=sa.bindparam("now"))
)
ANSWER_KEY = Prepared(
    idempotency_keys.update()
    .where(
        idempotency_keys.c.merchant_id == sa.bindparam("mid"),
        idempotency_keys.c.key == sa.bindparam("k"),
        idempotency_keys.c.claim_token == sa.bindparam("token"),
    )
    .values(
        status="completed",
        response_status=201,
        response_body=sa.bindparam("body"),
        owner=None,
        claim_token=None,
        updated_at=sa.bindparam("now"),
    )
)
# with `risk`: the customer's last day of decisions, and this payment's decision
RISK_VELOCITY = Prepared(
    sa.select(
        sa.func.count(), sa.func.coalesce(sa.func.sum(risk_decisions.c.amount_major), 0)
    ).where(
        risk_decisions.c.customer_id == sa.bindparam("customer"),
        risk_decisions.c.created_at
        >= sa.bindparam("since", type_=risk_decisions.c.created_at.type),
    )
)
INSERT_DECISION = Prepared(risk_decisions.insert())
INSERT_KEY, INSERT_PAYMENT = Prepared(idempotency_keys.insert()), Prepared(payments.insert())
INSERT_ATTEMPT, INSERT_EVENT = Prepared(attempts.insert()), Prepared(events.insert())


_IDS = IdFactory()  # made as paymend makes them: ordered by time, so indexes stay local


def _id(prefix: str) -> str:
    return _IDS.new(prefix)


def create_app(url: str, config_path: str, *, risk: bool = False) -> FastAPI:
    """The floor's app; with `risk`, also a risk decision before the call (8. above)."""
    sqlite = is_sqlite(url)
    engine = create_db_engine(url)
    pool = None if sqlite else ThreadPoolExecutor(8, "floor-store")
    config = load_config(config_path)
    channel, provider = next(iter(build_providers(config, SystemClock()).items()))
    known: dict[str, str] = {}  # key hash -> merchant id

    held: list[Connection] = []  # SQLite: one connection from transaction to transaction

    async def run(fn: Callable[[Connection], T]) -> T:
        def tx() -> T:
            if sqlite:
                if not held:
                    held.append(engine.connect())
                with held[0].begin():
                    return fn(held[0])
            with engine.begin() as conn:
                return fn(conn)

        if pool is None:
            return tx()
        return await asyncio.get_running_loop().run_in_executor(pool, tx)

    app = FastAPI(title="floor")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    async def merchant_of(request: Request) -> str:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        digest = keys.hash_key(key.strip())
        if digest not in known:
            now = datetime.now(UTC)
            found = await run(lambda c: merchants.authenticate(c, digest, now))
            if found is None or scheme.lower() != "bearer":
                raise HTTPException(401, "api_key_invalid")
            known[digest] = found[0].id
        return known[digest]

    @app.post(PATH, status_code=201)
    async def create_payment(
        body: PaymentIn,
        request: Request,
        idempotency_key: Annotated[str, Header(alias="Idempotency-Key")],
    ) -> JSONResponse:
        mid = await merchant_of(request)
        amount = payment_amount(body.amount, body.currency)
        digest = idempotency.request_hash(PATH, body.model_dump(mode="json"))
        pid, aid, token = _id("pay"), _id("att"), random_hex(16)
        customer = body.customer.model_dump() if body.customer else {}
        now = datetime.now(UTC)
        created: dict[str, Any] = {"id": pid, "order_id": body.order_id, "status": "processing"}

        def first(conn: Connection) -> None:
            INSERT_KEY.run(
                conn,
                {
                    "merchant_id": mid,
                    "key": idempotency_key,
                    "request_hash": digest,
                    "request_path": PATH,
                    "status": "in_progress",
                    "created_at": now,
                    "updated_at": now,
                    "claim_token": token,
                    "resource_kind": "payment",
                    "resource_id": pid,
                },
            )
            if not sqlite:
                lock = hashlib.blake2b(f"{mid}\0{body.order_id}".encode(), digest_size=8)
                LOCK_ORDER.first(conn, {"lock": int.from_bytes(lock.digest(), "big", signed=True)})
            if ORDER_TAKEN.first(conn, {"mid": mid, "order": body.order_id}):
                raise HTTPException(409, "order_payment_in_progress")
            decision = None
            if risk:  # read before the new rows are written, as paymend reads
                decision = _decide(conn, mid, pid, customer.get("id") or "", amount.minor, now)
            with deferring(conn):  # the new rows in one statement on PostgreSQL, as paymend's
                _insert_new(conn, decision)

        def _insert_new(conn: Connection, decision: dict[str, Any] | None) -> None:
            INSERT_PAYMENT.write(
                conn,
                {
                    "id": pid,
                    "merchant_id": mid,
                    "order_id": body.order_id,
                    "amount": amount.minor,
                    "currency": amount.currency,
                    "method": body.method,
                    "bank": body.bank,
                    "region": body.region,
                    "status": "processing",
                    "amount_refunded": 0,
                    "amount_refund_pending": 0,
                    "customer": customer,
                    "customer_id": customer.get("id"),
                    "metadata": body.metadata or {},
                    "payment_token": body.payment_token,
                    "version": 0,
                    "created_at": now,
                    "updated_at": now,
                },
            )
            INSERT_ATTEMPT.write(
                conn,
                {
                    "id": aid,
                    "payment_id": pid,
                    "seq": 1,
                    "provider": channel,
                    "status": "pending",
                    "idempotency_key": f"paymend-{aid}",
                    "reason": "route: the only channel",
                    "request": {"amount": amount.minor, "token": mask_token(body.payment_token)},
                    "created_at": now,
                },
            )
            INSERT_EVENT.write(conn, _event(mid, "payment.created", pid, created, now))
            if decision is not None:
                INSERT_DECISION.write(conn, decision)

        await run(first)
        result = await provider.authorize(
            ChargeRequest(f"paymend-{aid}", pid, amount, body.method, body.payment_token)
        )
        status = "succeeded" if result.outcome is ProviderOutcome.SUCCEEDED else "failed"
        answer = {**created, "status": status, "amount": amount.minor, "attempts": [aid]}
        done = datetime.now(UTC)

        def changed(count: int) -> None:
            if count != 1:
                raise HTTPException(409, "concurrent_update")

        def second(conn: Connection) -> None:
            with deferring(conn):  # one statement on PostgreSQL, as paymend writes them
                _finish(conn)

        def _finish(conn: Connection) -> None:
            FINISH_ATTEMPT.write(
                conn,
                {
                    "aid": aid,
                    "status": status,
                    "ref": result.reference,
                    "code": result.raw_code,
                    "message": result.raw_message,
                    "latency": 0,
                    "now": done,
                },
            )
            FINISH_PAYMENT.write(conn, {"pid": pid, "status": status, "now": done}, changed)
            INSERT_EVENT.write_rows(  # both events in one statement, as paymend writes them
                conn,
                [
                    _event(mid, "attempt.finished", pid, answer, done),
                    _event(mid, f"payment.{status}", pid, answer, done),
                ],
            )
            ANSWER_KEY.write(
                conn,
                {"mid": mid, "k": idempotency_key, "token": token, "body": answer, "now": done},
            )

        await run(second)
        return JSONResponse(answer, status_code=201)

    return app


def _decide(
    conn: Connection, mid: str, pid: str, customer: str, minor: int, now: datetime
) -> dict[str, Any]:
    """The decision's row, from the customer's last day (stored with the payment)."""
    key = f"{mid}/{customer}" if customer else ""
    seen = RISK_VELOCITY.first(conn, {"customer": key, "since": now - timedelta(days=1)})
    count, total = seen or (0, 0)
    verdict = "review" if count >= 50 or total > 1_000_000 else "allow"
    return {
        "payment_id": pid,
        "merchant_id": mid,
        "verdict": verdict,
        "rules_version": "floor",
        "score": 0,
        "fired": [],
        "features": {"customer_count_24h": count, "customer_amount_24h": total},
        "card": "",
        "customer_id": key,
        "device": "",
        "ip": "",
        "email": "",
        "amount_major": minor / 100,
        "currency": "CNY",
        "created_at": now,
    }


def _event(mid: str, kind: str, pid: str, doc: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {
        "id": _id("evt"),
        "merchant_id": mid,
        "type": kind,
        "subject_id": pid,
        "payload": doc,
        "created_at": now,
    }


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="the bench/http_load.py fair floor server")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--config", required=True)
    parser.add_argument("--risk", action="store_true", help="decide each payment's risk too")
    args = parser.parse_args()
    app = create_app(args.database_url, args.config, risk=args.risk)
    spare_collector()  # as `paymend serve` does before serving
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_config=None, access_log=False)


if __name__ == "__main__":
    main()
