"""A paymend process for the crash test (`tests/engine/test_crash.py`) to kill.

    python -m tests.engine.crash_driver --db URL --ledger FILE --orders N --seed S [--finish]

It builds a real runtime (`build_runtime`: system clock, the threaded store, two
simulated card channels sharing a SQLite ledger that outlives the process) and either

- pays the orders `order-0` .. `order-<N-1>` the store does not know yet, 8 at a time,
  with the worker running alongside (normal mode), or
- creates nothing and lets the worker finish what earlier (killed) runs left: status
  queries, orphaned attempts, continuations, duplicate refunds (`--finish`).

It prints one line per event on stdout, flushed, so the parent can tell where a kill
landed: `ready <todo>` (or `ready finish`), `start <order>`, `done <order> <status>`,
`paid`; around each worker job `work <kind> <id>` and `worked <kind> <id>`; in
`--finish` mode `swept ...` after each sweep that did something, and one JSON summary at
the end. Logs go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import Any, ParamSpec, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paymend.config import PaymendConfig, Settings
from paymend.domain.errors import PaymendError
from paymend.domain.ids import MerchantId
from paymend.domain.money import Money
from paymend.domain.payment import Customer
from paymend.engine.commands import PayCommand
from paymend.engine.runtime import Runtime, build_runtime
from paymend.engine.worker import WorkerSettings
from paymend.observability import configure_logging
from paymend.store import merchants
from paymend.store.tables import attempts, jobs, payments, refunds
from paymend.store.tables import merchants as merchant_rows

T = TypeVar("T")
P = ParamSpec("P")
MERCHANT = MerchantId("mer_crash")
CONCURRENCY = 8
HANG_S = 1.0  # a hung call answers (too late) after this
WORKER = WorkerSettings(
    interval_s=0.05,
    # above the checkout deadline (0.5 s) with a margin: a pending attempt this old in the
    # store is not being called by a live checkout of this process
    pending_after_s=2.0,
    # a job claimed by a killed process is taken over after this (default 120 s); above
    # the longest job run (worker_deadline_s)
    lease_s=3.0,
)


def channel() -> dict[str, Any]:
    return {
        "type": "simulator",
        "methods": ["card"],
        "success_rate": 0.9,
        "latency_ms": {"p50": 5, "p99": 30},
        "timeout_rate": 0.15,
        "charged_on_timeout": 0.5,
        "lost_response_rate": 0.05,
    }


def runtime(db: str, ledger: str, seed: int) -> Runtime:
    config = PaymendConfig.model_validate(
        {
            "seed": seed,
            "simulator": {"ledger": ledger},
            "providers": {"sim_a": channel(), "sim_b": channel()},
            "routing": ["sim_a", "sim_b"],
            "engine": {"provider_timeout": "200ms", "checkout_deadline": "500ms"},
        }
    )
    rt = build_runtime(Settings(database_url=db), config)
    settlement = rt.service.settlement  # what bounds a worker run on a payment
    settlement.settings = replace(settlement.settings, worker_deadline_s=2.0)
    rt.worker.settings = WORKER
    for sim in rt.simulators.values():
        sim.settings.hang_s = HANG_S
    # the worker's jobs, announced (instance attributes shadow the methods it calls)
    service = rt.service
    service.settle_attempt = traced("settle", service.settle_attempt)  # type: ignore[method-assign]
    service.run_attempt = traced("run", service.run_attempt)  # type: ignore[method-assign]
    service.refunds.resend = traced("refund", service.refunds.resend)  # type: ignore[method-assign]
    return rt


def say(line: str) -> None:
    print(line, flush=True)


def traced(
    kind: str, job: Callable[P, Coroutine[Any, Any, T]]
) -> Callable[P, Coroutine[Any, Any, T]]:
    """`job` (called with its subject's id), announcing on stdout when it starts and ends:
    the parent kills mid-job."""

    async def run(*args: P.args, **kwargs: P.kwargs) -> T:
        subject = [*args, *kwargs.values()][0]
        say(f"work {kind} {subject}")
        result = await job(*args, **kwargs)
        say(f"worked {kind} {subject}")
        return result

    return run


def ensure_merchant(rt: Runtime) -> None:
    def write(conn: Connection) -> None:
        known = conn.execute(
            sa.select(sa.func.count())
            .select_from(merchant_rows)
            .where(merchant_rows.c.id == MERCHANT)
        ).scalar_one()
        if not known:
            merchants.create(conn, MERCHANT, "crash shop", rt.clock.now())

    rt.store.run_sync(write)


def known_orders(rt: Runtime) -> set[str]:
    def read(conn: Connection) -> set[str]:
        rows = conn.execute(
            sa.select(payments.c.order_id).where(payments.c.merchant_id == MERCHANT)
        )
        return {r.order_id for r in rows}

    return rt.store.run_sync(read)


def order_cmd(i: int) -> PayCommand:
    return PayCommand(
        merchant_id=MERCHANT,
        order_id=f"order-{i}",
        amount=Money(1000 + i, "CNY"),
        method="card",
        token=f"tok_card_{i}",
        customer=Customer(f"cus_{i}", "zh-CN", None, f"c{i}@example.com"),
    )


async def pay_all(rt: Runtime, orders: int) -> None:
    known = known_orders(rt)
    todo = [i for i in range(orders) if f"order-{i}" not in known]
    stop = asyncio.Event()
    worker = asyncio.create_task(rt.worker.run(stop))
    gate = asyncio.Semaphore(CONCURRENCY)
    say(f"ready {len(todo)}")

    async def one(i: int) -> None:
        async with gate:
            say(f"start order-{i}")
            try:
                view = await rt.service.pay(order_cmd(i))
                status = view.payment.status.value
            except PaymendError as exc:  # e.g. payment_in_flight: the worker finishes it
                status = f"error:{exc.code}"
            say(f"done order-{i} {status}")

    try:
        await asyncio.gather(*(one(i) for i in todo))
    finally:
        stop.set()
        await worker
    say("paid")


def outstanding(conn: Connection) -> dict[str, int]:
    """What still owes work: anything but zero everywhere means not finished."""

    def count(table: sa.Table, *where: Any) -> int:
        query = sa.select(sa.func.count()).select_from(table).where(*where)
        return int(conn.execute(query).scalar_one())

    return {
        "payments_processing": count(payments, payments.c.status.in_(["created", "processing"])),
        "attempts_open": count(attempts, attempts.c.status.in_(["pending", "unknown"])),
        "refunds_pending": count(refunds, refunds.c.status == "pending"),
        "jobs_pending": count(jobs, jobs.c.status == "pending"),
    }


async def finish(rt: Runtime, timeout_s: float) -> None:
    started = time.monotonic()
    sweeps = 0
    say("ready finish")
    while True:
        report = await rt.worker.sweep()
        sweeps += 1
        left = await rt.store.run(outstanding)
        drained = not any(left.values())
        if report.busy:
            say(f"swept orphans={report.orphans} done={sum(report.done.values())} left={left}")
        if drained or time.monotonic() - started > timeout_s:
            break
        await asyncio.sleep(0.1)
    await rt.worker.webhooks.close()
    summary = {
        "drained": drained,
        "outstanding": left,
        "sweeps": sweeps,
        "seconds": round(time.monotonic() - started, 2),
    }
    say(json.dumps(summary, sort_keys=True))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--ledger", required=True)
    parser.add_argument("--orders", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--finish", action="store_true")
    parser.add_argument("--finish-timeout", type=float, default=45.0)
    args = parser.parse_args(argv)
    configure_logging("WARNING", stream=sys.stderr)
    rt = runtime(args.db, args.ledger, args.seed)
    try:
        ensure_merchant(rt)
        if args.finish:
            asyncio.run(finish(rt, args.finish_timeout))
        else:
            asyncio.run(pay_all(rt, args.orders))
    finally:
        rt.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
