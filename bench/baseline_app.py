"""The HTTP baseline for bench/http_load.py: the least a payment endpoint can do.

A bare FastAPI app with one `POST /v1/payments` that parses the same JSON body as
paymend's (a Pydantic model with the same fields and types, unknown fields refused),
inserts one row - the request, its idempotency key and a generated id - into a SQLite
table with SQLAlchemy Core and commits, and answers 201 with a small JSON document.

The database is set up by paymend's own create_db_engine: WAL journal,
synchronous=NORMAL, one connection, `BEGIN IMMEDIATE`. The write runs inline on the
event loop (a SQLite commit in WAL mode takes tens of microseconds, so a thread hop
would only add cost): this is the cheapest honest way to accept a payment request and
keep it, so paymend/baseline is the share of that ceiling paymend keeps. It is served
like `paymend serve`: `uvicorn.run` in one process, one worker, `log_config=None`, no
access log.

    python bench/baseline_app.py --port 8100 --database-url sqlite:////tmp/baseline.db
"""

from __future__ import annotations

import argparse
import secrets
from datetime import UTC, datetime
from typing import Annotated

import sqlalchemy as sa
from fastapi import FastAPI, Header
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, StrictInt, StringConstraints

from paymend.engine.collector import spare_collector
from paymend.store.engines import create_db_engine

metadata = sa.MetaData()
payments = sa.Table(
    "payments",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("idempotency_key", sa.String(255), unique=True),
    sa.Column("order_id", sa.String(128), nullable=False),
    sa.Column("amount", sa.BigInteger(), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("method", sa.String(32), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("request", sa.JSON(), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

Short = Annotated[str, StringConstraints(min_length=1, max_length=64, strip_whitespace=True)]


class CustomerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None
    locale: str | None = None
    phone: str | None = None
    email: str | None = None


class PaymentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: StrictInt
    currency: Annotated[str, StringConstraints(min_length=3, max_length=3)]
    method: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z_]{1,31}$")]
    order_id: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    bank: Short | None = None
    region: Short | None = None
    payment_token: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = None
    customer: CustomerIn | None = None
    metadata: dict[str, Annotated[str, StringConstraints(max_length=500)]] | None = None


def create_app(url: str) -> FastAPI:
    engine = create_db_engine(url)  # paymend's own SQLite tuning: a like-for-like floor
    metadata.create_all(engine)
    app = FastAPI(title="baseline")
    insert = payments.insert()

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/payments", status_code=201)
    async def create_payment(
        body: PaymentIn,
        idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
    ) -> JSONResponse:
        payment_id = "pay_" + secrets.token_hex(10)
        now = datetime.now(UTC)
        with engine.begin() as conn:
            conn.execute(
                insert,
                {
                    "id": payment_id,
                    "idempotency_key": idempotency_key,
                    "order_id": body.order_id,
                    "amount": body.amount,
                    "currency": body.currency,
                    "method": body.method,
                    "status": "succeeded",
                    "request": body.model_dump(mode="json"),
                    "created_at": now,
                },
            )
        return JSONResponse(
            {
                "id": payment_id,
                "object": "payment",
                "status": "succeeded",
                "order_id": body.order_id,
                "amount": body.amount,
                "currency": body.currency,
                "created_at": now.isoformat(),
            },
            status_code=201,
        )

    return app


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="the bench/http_load.py baseline server")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--database-url", required=True)
    args = parser.parse_args()
    app = create_app(args.database_url)
    spare_collector()  # as `paymend serve` does before serving
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_config=None, access_log=False)


if __name__ == "__main__":
    main()
