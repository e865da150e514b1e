"""Engine benchmark: payments per second through `PaymentService.pay`, against a floor.

What is measured
----------------
N payments go through `PaymentService.pay` in this one process, against a simulated
channel that answers at once and always approves (latency 0, success rate 1, no faults).
With the provider out of the picture, what remains is paymend's own cost per payment:
routing, the domain objects and their state machines, id generation, masking, the
structured log line and metrics, and its two transactions through `Store.run`:

    tx1  check the order holds no other payment (PostgreSQL: under an advisory lock on
         the order), insert payment, insert attempt (pending), insert event
         payment.created
    tx2  update attempt, update payment (optimistic version check), insert events
         attempt.finished and payment.succeeded (one statement, a VALUES list)

On PostgreSQL each transaction's writes after its reads go to the server as one
statement (store/prepared.py `deferring`): tx1's three inserts, tx2's three writes.

Each database is measured in the store's server mode, "threaded", as `paymend serve`
runs it (SQLite: on the event loop, the writer thread taking a transaction only when
another process holds the write lock; PostgreSQL: a pool of 8 connections and as many
threads), sequentially and with 16 payments in flight. On SQLite the lab's inline mode
(always on the event loop, never a thread) is reported too.

The floor, and why it is fair
-----------------------------
The floor writes the same rows in the same shape of transactions - the same tables and
column types (`paymend.store.tables`), the same JSON documents, the same statements per
transaction and one commit per transaction - the way the store writes them: compiled
once and handed to the driver's cursor, on PostgreSQL the writes held back and sent as
one statement (store/prepared.py), on an engine built by the same `create_db_engine`
(SQLite: WAL, synchronous=NORMAL, BEGIN IMMEDIATE, one connection held from transaction
to transaction when sequential; PostgreSQL: the same pool). Were the floor to write
through `conn.execute`, it would pay SQLAlchemy's execution context per statement that
the store no longer pays, and stop being a floor; that floor, the one of the figures
before 2 December, is measured too and its ratio reported beside the headline. It has
no business logic: ids come from a counter, the JSON documents are built once, and the
updates set only the columns that change (the rows end up identical in content and
size). It runs without asyncio, sequentially on one
connection and concurrently from as many threads as the store has, each thread looping
over its share. It is the cheapest honest way to put these rows into the database, so
engine/floor says how much of the achievable write throughput paymend keeps. The
headline ratio is the strict one: the engine as `paymend serve` runs it (threaded store,
16 in flight) over the floor's best mode. The project's target is >= 0.8.

Every database (engine threaded, engine inline, floor, the conn.execute floor) is fresh
and all are open at once. Each is warmed up; then, in each of `--rounds` rounds, each in
turn pays its share of N sequentially and its share with 16 in flight while the others
idle (the first moving one place a round), so a machine whose speed drifts during the
run slows them alike, and table sizes match at the end of every round.
Afterwards the row counts and statuses are checked, and one payment's rows as the engine
wrote them are compared with the floor's (ids and times aside): if pay() changes what it
writes, the run says the floor no longer matches instead of quietly comparing unlike
work. Logs go through paymend's real
logging set-up (JSON, masking) into /dev/null, so their cost is counted but no terminal
I/O is.

    python bench/engine.py [--n 2000] [--rounds 5] [--postgres-url URL] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.pool import NullPool

from paymend.domain.events import EventType
from paymend.domain.ids import MerchantId
from paymend.domain.masking import mask_token
from paymend.domain.money import Money
from paymend.domain.payment import AttemptStatus, Customer, PaymentStatus
from paymend.engine.clock import SystemClock
from paymend.engine.commands import PayCommand
from paymend.engine.ids import IdFactory
from paymend.engine.payments import PaymentService
from paymend.engine.runtime import build_payment_service
from paymend.engine.settings import EngineSettings
from paymend.observability import configure_logging
from paymend.providers.simulator import SimulatedProvider, SimulatorSettings
from paymend.store import merchants
from paymend.store.database import Store
from paymend.store.deferred import deferring
from paymend.store.engines import create_db_engine, is_sqlite
from paymend.store.migrate import upgrade
from paymend.store.prepared import Prepared
from paymend.store.tables import ORDER_HOLDING, attempts, events, payments
from turns import in_turns, share_out

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
BENCH_DB = "paymend_bench"
CONCURRENCY = 16
PG_POOL = 8  # Store's default pool_size, hence its thread count on PostgreSQL
TARGET = 0.8
CHANNEL = "sim"

# One payment as a checkout would send it (the API's documented example).
AMOUNT, CURRENCY, METHOD = 1999, "CNY", "card"
BANK, REGION, TOKEN = "ICBC", "CN-East", "tok_from_provider_sdk_0123456789"
CUSTOMER = Customer("c-42", "zh-CN", "+86 138 0013 8000", "buyer@example.com")
METADATA = {"cart": "cart-7f3a", "channel": "web"}


# -- results ------------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    payments: int
    seconds: float

    @property
    def per_s(self) -> float:
        return self.payments / self.seconds


@dataclass
class DbResult:
    database: str
    engine: dict[str, float] = field(default_factory=dict)
    floor: dict[str, float] = field(default_factory=dict)
    ratios: dict[str, float] = field(default_factory=dict)
    headline_ratio: float = 0.0
    # the floor writing through `conn.execute`, as it did before the store's writes went
    # to the driver's cursor: what the earlier figures were measured against
    core_floor: dict[str, float] = field(default_factory=dict)
    core_ratio: float = 0.0
    floor_matches: bool = False
    seconds: float = 0.0

    def add(self, kind: str, phase: Phase) -> None:
        target = {"engine": self.engine, "floor": self.floor, "core": self.core_floor}[kind]
        target[phase.name] = round(phase.per_s, 1)


# -- engine -------------------------------------------------------------------------------


def make_service(store: Store) -> PaymentService:
    clock = SystemClock()
    provider = SimulatedProvider(
        CHANNEL,
        SimulatorSettings(
            methods=(METHOD,),
            success_rate=1.0,
            latency_p50_ms=0.0,
            latency_p99_ms=0.0,
            timeout_rate=0.0,
            lost_response_rate=0.0,
            error_rate=0.0,
        ),
        clock,
        seed=1,
    )
    return build_payment_service(
        store,
        {CHANNEL: provider},
        clock,
        EngineSettings(provider_timeout_s=10.0, routing=(CHANNEL,)),
        IdFactory(),
    )


def create_merchant(store: Store) -> MerchantId:
    merchant, _key = store.run_sync(
        lambda conn: merchants.create(
            conn, MerchantId(IdFactory().new("mer")), "bench", datetime.now(UTC)
        )
    )
    return merchant.id


def commands(merchant_id: MerchantId, tag: str, n: int) -> list[PayCommand]:
    return [
        PayCommand(
            merchant_id=merchant_id,
            order_id=f"order-{tag}-{i:07d}",
            amount=Money(AMOUNT, CURRENCY),
            method=METHOD,
            bank=BANK,
            region=REGION,
            token=TOKEN,
            customer=CUSTOMER,
            metadata=dict(METADATA),
        )
        for i in range(n)
    ]


async def pay_all(service: PaymentService, cmds: list[PayCommand], concurrency: int) -> float:
    """Pay every command with at most `concurrency` in flight; return elapsed seconds."""
    failures: list[str] = []
    it = iter(cmds)

    async def lane() -> None:
        for cmd in it:
            view = await service.pay(cmd)
            if view.payment.status is not PaymentStatus.SUCCEEDED:
                failures.append(view.payment.status.value)

    start = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    if failures:
        raise RuntimeError(f"{len(failures)} payments did not succeed: {failures[:5]}")
    return elapsed


class EngineRun:
    """paymend's engine on one database, kept open from round to round: its store, its
    service and one event loop for all its phases."""

    def __init__(self, url: str, *, inline: bool) -> None:
        self.mode = "inline" if inline else "threaded"
        self.store = Store(url, inline=inline, pool_size=PG_POOL)
        self.loop = asyncio.new_event_loop()
        self.service = make_service(self.store)
        self.merchant_id = create_merchant(self.store)

    def pay(self, tag: str, n: int, concurrency: int) -> float:
        """n payments, at most `concurrency` in flight; the seconds they took."""
        cmds = commands(self.merchant_id, tag, n)
        return self.loop.run_until_complete(pay_all(self.service, cmds, concurrency))

    def phase(self, concurrent: bool) -> str:
        return f"{self.mode} concurrent{CONCURRENCY}" if concurrent else f"{self.mode} sequential"

    def finish(self, expected: int) -> Shape:
        check_rows(self.store.engine, expected)
        return row_shape(self.store.engine)

    def close(self) -> None:
        self.loop.close()
        self.store.close()


# -- floor --------------------------------------------------------------------------------


class FloorRows:
    """The rows pay() writes, built from constants and a counter: no business logic."""

    def __init__(self, merchant_id: str, driver: bool = True) -> None:
        self.merchant_id = merchant_id
        self.driver = driver  # False: every statement through `conn.execute`
        self._serial = itertools.count(1)  # next() on it is atomic: threads share it
        self.customer = CUSTOMER.masked()  # no data key in the bench: masked forms only
        self.request = {
            "amount": AMOUNT,
            "currency": CURRENCY,
            "method": METHOD,
            "bank": BANK,
            "region": REGION,
            "token": mask_token(TOKEN),
            "customer": CUSTOMER.masked(),
        }

        # built once: the statements carry no per-payment logic
        self.finish_attempt = Prepared(
            attempts.update()
            .where(attempts.c.id == sa.bindparam("aid"))
            .values(
                status="succeeded",
                provider_reference=sa.bindparam("ref"),
                raw_code="APPROVED",
                raw_message="approved",
                latency_ms=0,
                finished_at=sa.bindparam("now"),
            )
        )
        self.lock_order = Prepared(sa.select(sa.func.pg_advisory_xact_lock(sa.bindparam("key"))))
        self.order_taken = Prepared(
            sa.select(payments.c.id).where(
                payments.c.merchant_id == sa.bindparam("mid"),
                payments.c.order_id == sa.bindparam("order"),
                payments.c.status.in_([sa.literal(s) for s in ORDER_HOLDING]),
            )
        )
        self.finish_payment = Prepared(
            payments.update()
            .where(payments.c.id == sa.bindparam("pid"), payments.c.version == 0)
            .values(status="succeeded", version=1, updated_at=sa.bindparam("now"))
        )
        self.insert_payment = Prepared(payments.insert())
        self.insert_attempt = Prepared(attempts.insert())
        self.insert_event = Prepared(events.insert())

    def payload(self, pid: str, order: str, status: str, aid: str | None) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "payment_id": pid,
            "order_id": order,
            "status": status,
            "amount": AMOUNT,
            "currency": CURRENCY,
            "amount_refunded": 0,
            "customer": self.customer,
        }
        if aid is not None:
            doc["attempt"] = {
                "id": aid,
                "provider": CHANNEL,
                "status": "succeeded",
                "raw_code": "APPROVED",
                "unified_code": None,
                "decision": None,
            }
        return doc

    def event(self, eid: str, kind: EventType, pid: str, doc: dict[str, Any], now: datetime) -> Any:
        return {
            "id": eid,
            "merchant_id": self.merchant_id,
            "type": kind.value,
            "subject_id": pid,
            "payload": doc,
            "created_at": now,
        }

    def pay(self, engine: Engine, held: Connection | None = None) -> None:
        """tx1 and tx2 of one payment, statement for statement as pay() issues them, on
        `held` when given (SQLite: the one connection, as the store holds it)."""
        serial = next(self._serial)
        k = f"{serial:020d}"  # ids as long as IdFactory's random ones
        pid, aid, order = f"pay_{k}", f"att_{k}", f"order-flr-{serial:07d}"
        e1, e2, e3 = (f"evt_{3 * serial + j:020d}" for j in range(3))
        now = datetime.now(UTC)
        with _transaction(engine, held) as conn:  # tx1
            if engine.dialect.name == "postgresql":
                self._first(conn, self.lock_order, {"key": serial})
            if self._first(conn, self.order_taken, {"mid": self.merchant_id, "order": order}):
                raise RuntimeError(f"floor: order {order} already taken")
            self._created(conn, pid, aid, order, e1, now)
        ref = f"ch_{CHANNEL}_{serial:08d}"
        now = datetime.now(UTC)
        with _transaction(engine, held) as conn:  # tx2
            self._finished(conn, pid, aid, order, ref, (e2, e3), now)

    def _created(
        self, conn: Connection, pid: str, aid: str, order: str, e1: str, now: datetime
    ) -> None:
        """tx1's rows, after its reads: one statement on PostgreSQL, as pay() writes them."""
        with self._together(conn):
            self._write(
                self.insert_payment,
                conn,
                {
                    "id": pid,
                    "merchant_id": self.merchant_id,
                    "order_id": order,
                    "amount": AMOUNT,
                    "currency": CURRENCY,
                    "method": METHOD,
                    "bank": BANK,
                    "region": REGION,
                    "status": "processing",
                    "amount_refunded": 0,
                    "amount_refund_pending": 0,
                    "customer": self.customer,
                    "customer_id": CUSTOMER.id,
                    "metadata": METADATA,
                    "payment_token": TOKEN,
                    "failure_code": None,
                    "failure_message": None,
                    "trace_id": None,
                    "version": 0,
                    "created_at": now,
                    "updated_at": now,
                },
            )
            self._write(
                self.insert_attempt,
                conn,
                {
                    "id": aid,
                    "payment_id": pid,
                    "seq": 1,
                    "provider": CHANNEL,
                    "status": "pending",
                    "idempotency_key": f"paymend-{aid}",
                    "provider_reference": None,
                    "raw_code": None,
                    "raw_message": None,
                    "unified_code": None,
                    "decision": None,
                    # a reason of the length routing writes
                    "reason": "route: sim first: est. success 99.9% over 2312 calls",
                    "latency_ms": None,
                    "trace_id": None,
                    "request": self.request,
                    "created_at": now,
                    "finished_at": None,
                },
            )
            created = self.payload(pid, order, "processing", None)
            self._write(
                self.insert_event,
                conn,
                self.event(e1, EventType.PAYMENT_CREATED, pid, created, now),
            )

    def _finished(
        self,
        conn: Connection,
        pid: str,
        aid: str,
        order: str,
        ref: str,
        ids: tuple[str, str],
        now: datetime,
    ) -> None:
        """tx2's rows: one statement on PostgreSQL, as pay() writes them."""

        def updated(count: int) -> None:
            if count != 1:
                raise RuntimeError(f"floor: payment {pid} not updated")

        with self._together(conn):
            self._write(self.finish_attempt, conn, {"aid": aid, "ref": ref, "now": now})
            finished = self.payload(pid, order, "processing", aid)
            self._write(self.finish_payment, conn, {"pid": pid, "now": now}, updated)
            succeeded = self.payload(pid, order, "succeeded", aid)
            both = [
                self.event(ids[0], EventType.ATTEMPT_FINISHED, pid, finished, now),
                self.event(ids[1], EventType.PAYMENT_SUCCEEDED, pid, succeeded, now),
            ]
            if self.driver:  # one statement for both, as pay() writes them
                self.insert_event.write_rows(conn, both)
            else:
                conn.execute(events.insert().values(both))

    def _together(self, conn: Connection) -> AbstractContextManager[None]:
        return deferring(conn) if self.driver else nullcontext()

    def _write(
        self,
        stmt: Prepared,
        conn: Connection,
        params: dict[str, Any],
        then: Callable[[int], None] | None = None,
    ) -> None:
        if self.driver:
            stmt.write(conn, params, then)
            return
        count = int(conn.execute(stmt.statement, params).rowcount)
        if then is not None:
            then(count)

    def _first(self, conn: Connection, stmt: Prepared, params: dict[str, Any]) -> Any:
        if self.driver:
            return stmt.first(conn, params)
        return conn.execute(stmt.statement, params).first()


@contextmanager
def _transaction(engine: Engine, held: Connection | None) -> Iterator[Connection]:
    if held is None:
        with engine.begin() as conn:
            yield conn
        return
    with held.begin():
        yield held


def floor_all(rows: FloorRows, engine: Engine, n: int, threads: int) -> float:
    """Write n payments' rows from `threads` threads (1: a plain loop); return seconds."""
    if threads == 1 and rows.driver:
        with engine.connect() as held:
            start = time.perf_counter()
            for _ in range(n):
                rows.pay(engine, held)
            return time.perf_counter() - start
    if threads == 1:
        start = time.perf_counter()
        for _ in range(n):
            rows.pay(engine)
        return time.perf_counter() - start
    shares = share_out(n, threads)

    def lane(count: int) -> None:
        for _ in range(count):
            rows.pay(engine)

    with ThreadPoolExecutor(threads) as pool:
        start = time.perf_counter()
        list(pool.map(lane, shares))
        return time.perf_counter() - start


class FloorRun:
    """The floor on one database, kept open from round to round."""

    def __init__(self, url: str, *, driver: bool) -> None:
        self.engine = create_db_engine(url, pool_size=PG_POOL)
        self.threads = 1 if is_sqlite(url) else PG_POOL
        with self.engine.begin() as conn:
            merchant_id = _floor_merchant(conn)
        self.rows = FloorRows(merchant_id, driver)

    def pay(self, tag: str, n: int, concurrency: int) -> float:
        """n payments, sequentially or from the store's number of threads; seconds."""
        return floor_all(self.rows, self.engine, n, 1 if concurrency == 1 else self.threads)

    def phase(self, concurrent: bool) -> str:
        if not concurrent:
            return "sequential"
        return f"{self.threads} thread{'s' if self.threads > 1 else ''}"

    def finish(self, expected: int) -> Shape:
        check_rows(self.engine, expected)
        return row_shape(self.engine)

    def close(self) -> None:
        self.engine.dispose()


def _floor_merchant(conn: Connection) -> str:
    merchant, _key = merchants.create(
        conn, MerchantId(IdFactory().new("mer")), "bench", datetime.now(UTC)
    )
    return merchant.id


# -- databases ----------------------------------------------------------------------------


def check_rows(engine: Engine, expected: int) -> None:
    """Every payment succeeded, with one succeeded attempt and three events."""
    with engine.connect() as conn:
        count = conn.execute(
            sa.select(sa.func.count()).where(payments.c.status == PaymentStatus.SUCCEEDED.value)
        ).scalar_one()
        n_attempts = conn.execute(
            sa.select(sa.func.count()).where(attempts.c.status == AttemptStatus.SUCCEEDED.value)
        ).scalar_one()
        n_events = conn.execute(sa.select(sa.func.count()).select_from(events)).scalar_one()
    if (count, n_attempts, n_events) != (expected, expected, 3 * expected):
        raise RuntimeError(
            f"row check failed: {count} payments, {n_attempts} attempts, {n_events} events;"
            f" expected {expected}, {expected}, {3 * expected}"
        )


Shape = dict[str, Any]


def row_shape(engine: Engine) -> Shape:
    """What one payment left behind, ids and times aside: to prove the floor matches."""
    order = events.c.seq if "seq" in events.c else events.c.created_at
    with engine.connect() as conn:
        pid = conn.execute(sa.select(payments.c.id).limit(1)).scalar_one()
        payment = conn.execute(sa.select(payments).where(payments.c.id == pid)).one()
        attempt = conn.execute(sa.select(attempts).where(attempts.c.payment_id == pid)).one()
        docs = conn.execute(
            sa.select(events.c.type, events.c.payload)
            .where(events.c.subject_id == pid)
            .order_by(order)
        ).all()
    skip = {"id", "payment_id", "order_id", "merchant_id", "idempotency_key"}
    skip |= {"created_at", "updated_at", "finished_at", "provider_reference"}

    def plain(row: Any) -> dict[str, Any]:
        out = {k: v for k, v in row._mapping.items() if k not in skip}
        if isinstance(out.get("reason"), str):  # the route's figures vary; its shape not
            out["reason"] = out["reason"].split(":")[0]
        return out

    def doc(payload: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in payload.items() if k not in ("payment_id", "order_id")}
        if "attempt" in out:
            out["attempt"] = {k: v for k, v in out["attempt"].items() if k != "id"}
        return out

    return {
        "payment": plain(payment),
        "attempt": plain(attempt),
        "events": [(t, doc(p)) for t, p in docs],
    }


def sqlite_dbs(tmp: Path) -> Iterator[str]:
    for i in range(100):
        url = f"sqlite:///{tmp / f'bench-{i}.db'}"
        upgrade(url)
        yield url


class PostgresDbs:
    """Creates databases `paymend_bench_<n>` afresh, as many as the run holds at once;
    drops them at the end."""

    def __init__(self, url: str) -> None:
        self.admin = sa.create_engine(
            url,
            isolation_level="AUTOCOMMIT",
            poolclass=NullPool,
            connect_args={"connect_timeout": 5},
        )
        self.base = make_url(url)
        self.made: list[str] = []

    def reachable(self) -> str | None:
        try:
            with self.admin.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except Exception as exc:  # noqa: BLE001 - any driver error means "skip"
            return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}"
        return None

    def drop(self) -> None:
        with self.admin.connect() as conn:
            for name in self.made:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.made.clear()

    def fresh(self) -> str:
        name = f"{BENCH_DB}_{len(self.made)}"
        with self.admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        self.made.append(name)
        url = self.base.set(database=name).render_as_string(hide_password=False)
        upgrade(url)
        return url


# -- the run ------------------------------------------------------------------------------


def measure(
    label: str, fresh: Callable[[], str], *, n: int, warmup: int, inline: bool, rounds: int
) -> DbResult:
    """Every contender on a database of its own, all open at once: each warmed up, then
    `rounds` rounds in which each in turn pays its share of n sequentially and its share
    with 16 in flight while the others idle (bench/turns.py)."""
    result = DbResult(label)
    start = time.perf_counter()
    runs: list[tuple[str, EngineRun | FloorRun]] = []
    try:
        runs.append(("engine", EngineRun(fresh(), inline=False)))
        if inline:
            runs.append(("engine", EngineRun(fresh(), inline=True)))
        runs.append(("floor", FloorRun(fresh(), driver=True)))
        runs.append(("core", FloorRun(fresh(), driver=False)))
        seconds: dict[tuple[int, bool], float] = {}
        for _, run in runs:
            run.pay("warm", warmup, CONCURRENCY)
        for r, i, share in in_turns(len(runs), n, rounds):
            for concurrent in (False, True):
                took = runs[i][1].pay(
                    f"{r}{'c' if concurrent else 's'}", share, CONCURRENCY if concurrent else 1
                )
                seconds[i, concurrent] = seconds.get((i, concurrent), 0.0) + took
        for i, (kind, run) in enumerate(runs):
            for concurrent in (False, True):
                result.add(kind, Phase(run.phase(concurrent), n, seconds[i, concurrent]))
        # every database's rows checked; the threaded engine's and the floor's compared
        shapes = [run.finish(warmup + 2 * n) for _, run in runs]
        engine_shape, floor_shape = shapes[0], shapes[[kind for kind, _ in runs].index("floor")]
    finally:
        for _, run in runs:
            run.close()
    result.floor_matches = engine_shape == floor_shape
    if not result.floor_matches:
        print(
            f"WARNING {label}: the floor's rows differ from what pay() wrote; update"
            f" FloorRows.pay\n  engine {engine_shape}\n  floor  {floor_shape}",
            file=sys.stderr,
        )
    floor_seq, floor_best = result.floor["sequential"], max(result.floor.values())
    for name, value in result.engine.items():
        base = floor_seq if name.endswith("sequential") else floor_best
        result.ratios[name] = round(value / base, 3)
    production = result.engine[f"threaded concurrent{CONCURRENCY}"]
    result.headline_ratio = round(production / floor_best, 3)
    result.core_ratio = round(production / max(result.core_floor.values()), 3)
    result.seconds = round(time.perf_counter() - start, 1)
    return result


def report(result: DbResult) -> None:
    print(f"\n{result.database}  ({result.seconds:.1f}s)")
    print(f"  {'engine':<28}{'payments/s':>12}{'/floor':>9}")
    for name, value in result.engine.items():
        print(f"  {name:<28}{value:>12.1f}{result.ratios[name]:>9.2f}")
    same = "same rows as pay(): yes" if result.floor_matches else "ROWS DIFFER from pay()"
    print(f"  floor (the store's way: driver cursor, one held connection; {same})")
    for name, value in result.floor.items():
        print(f"  {name:<28}{value:>12.1f}")
    print("  floor through conn.execute (as the figures before 2 December)")
    for name, value in result.core_floor.items():
        print(f"  {name:<28}{value:>12.1f}")
    print(
        f"  ratio engine/floor = {result.headline_ratio:.2f}"
        f"  (threaded, {CONCURRENCY} in flight / best floor; target >= {TARGET});"
        f" against the conn.execute floor {result.core_ratio:.2f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="payments per measured phase")
    parser.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="rounds in which each contender pays its share of --n in turn",
    )
    parser.add_argument("--postgres-url", default=DEFAULT_PG_URL)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error("--n must be positive")
    if not 1 <= args.rounds <= args.n:
        parser.error("--rounds must be 1..--n")
    warmup = max(50, min(200, args.n // 10))

    devnull = open(os.devnull, "w")  # noqa: SIM115 - open for the whole run
    configure_logging("INFO", stream=devnull)
    say: Callable[[str], None] = (
        (lambda m: print(m, file=sys.stderr)) if args.json else (lambda m: print(m))
    )
    say(
        f"paymend engine benchmark: {args.n} payments per phase in {args.rounds} rounds,"
        f" {warmup} warm-up,"
        f" concurrency {CONCURRENCY}, {os.cpu_count()} CPUs"
    )
    results: list[DbResult] = []
    skipped: dict[str, str] = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="paymend-bench-") as tmp:
        dbs = sqlite_dbs(Path(tmp))
        sqlite = measure(
            "sqlite", lambda: next(dbs), n=args.n, warmup=warmup, inline=True, rounds=args.rounds
        )
        results.append(sqlite)
        if not args.json:
            report(sqlite)
    pg = PostgresDbs(args.postgres_url)
    reason = pg.reachable()
    if reason is not None:
        skipped["postgresql"] = f"unreachable at {_redact(args.postgres_url)} ({reason})"
        say(f"\npostgresql skipped: {skipped['postgresql']}")
    else:
        try:
            postgres = measure(
                "postgresql",
                pg.fresh,
                n=args.n,
                warmup=warmup,
                inline=False,
                rounds=args.rounds,
            )
        finally:
            pg.drop()
            pg.admin.dispose()
        results.append(postgres)
        if not args.json:
            report(postgres)
    total = round(time.perf_counter() - started, 1)
    ok = all(r.headline_ratio >= TARGET for r in results)
    summary = "; ".join(
        f"{r.database} {r.headline_ratio:.2f}"
        + ("" if r.floor_matches else " (floor rows differ from pay(): not comparable)")
        for r in results
    )
    if args.json:
        print(
            json.dumps(
                {
                    "n": args.n,
                    "warmup": warmup,
                    "concurrency": CONCURRENCY,
                    "target_ratio": TARGET,
                    "results": [asdict(r) for r in results],
                    "skipped": skipped,
                    "meets_target": ok,
                    "seconds": total,
                },
                indent=2,
            )
        )
    else:
        print(
            f"\nSUMMARY engine/floor ratio: {summary} (target >= {TARGET}:"
            f" {'met' if ok else 'NOT met'}); {total:.0f}s"
        )
    devnull.close()
    return 0


def _redact(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


if __name__ == "__main__":
    sys.exit(main())
