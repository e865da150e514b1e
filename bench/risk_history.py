"""Risk history benchmark: what a long history costs the risk read of each payment.

Every payment's risk decision reads, in one statement (store/risk_assessment.py
`read`), what the store knows of its customer and its card: their successes and
refunds, their first payment, chargebacks, list entries, and the last day's payments of
each subject. This
measures that read for one customer and one card as their history grows: one payment,
then 1,000 and 10,000 earlier ones (one every eight hours, older than the velocity
windows, all paid), among 20,000 payments of 2,000 other customers (PostgreSQL plans
by a shop's statistics, not one customer's), on a fresh SQLite database and, when it is
reachable, a fresh PostgreSQL one. Each figure is the median of `--reads` reads on one
connection, and is reported against the read of the same customer with no history,
measured in the same run: `growth`, the time at 10,000 over the time at 1,000, shows
whether the read still grows with the history (1.0: it does not). Successes and
refunds are counted over the last `HISTORY_DEPTH` payments
(store/risk_assessment.py); before, every one was read, and a customer with 10,000
earlier payments cost each new payment about 11 ms on SQLite and 17 ms on PostgreSQL.

It then measures what does still grow: the velocity counters, the last day's payments
of each subject, read back and counted for every payment. A new customer's payment is
decided (`RiskGate.prepare` and `decide`: the read, the counting and the rules; nothing
written) on an IP no payment used that day, then on one that 1,000 and 5,000 payments
of other customers used in the last 24 hours (a carrier's NAT, a campus).
`velocity_growth`, the time at 5,000 over the time at 1,000, is about 5 while the
counting reads every one of them.

    python bench/risk_history.py [--reads 300] [--sqlite-only] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from paymend.domain.ids import MerchantId
from paymend.domain.money import Money
from paymend.domain.payment import Customer
from paymend.engine.clock import SystemClock
from paymend.engine.commands import PayCommand
from paymend.engine.risk_gate import RiskGate, velocity_ask
from paymend.observability import configure_logging
from paymend.risk.features import subjects
from paymend.risk.rules import load
from paymend.store import merchants
from paymend.store import risk_assessment as assessment
from paymend.store.database import Connection, Store
from paymend.store.migrate import upgrade
from paymend.store.tables import payments, risk_decisions
from risk import make_service, rules_file
from servers import DEFAULT_PG_URL, Postgres

SIZES = (1_000, 10_000)  # earlier payments, in turn
OTHERS = 20_000  # other customers' payments, 2,000 customers' of ten each
SIGNALS = {"device_id": "dev-long", "ip": "10.9.9.9", "card_fingerprint": "fp-long"}
SHARED = (1_000, 5_000)  # other customers' payments on one IP in the last day, in turn
SHARED_IP = "100.64.0.1"  # a carrier-grade NAT's address (RFC 6598)


def _first_payment(store: Store, folder: Path) -> MerchantId:
    """A merchant and one payment of the measured customer, through the engine."""

    def create(conn: Connection) -> MerchantId:
        return merchants.create(conn, MerchantId("mer_bench"), "bench", datetime.now(UTC))[0].id

    mid = store.run_sync(create)
    service = make_service(store, True, rules_file(folder))
    asyncio.run(service.pay(_command(mid, "o-now", "c-long", SIGNALS)))
    return mid


def _command(mid: MerchantId, order: str, customer: str, signals: dict[str, str]) -> PayCommand:
    """A 19.99 CNY card payment of `customer` with the checkout's risk `signals`."""
    return PayCommand(
        merchant_id=mid,
        order_id=order,
        amount=Money(1999, "CNY"),
        method="card",
        token="sim_approve",
        customer=Customer(customer, "en", email=f"{customer}@example.com"),
        metadata=signals,
    )


def _add_history(store: Store, ids: range, others: bool = False) -> None:
    """Earlier paid payments, copies of the first: of the customer and its card, one
    every eight hours before the last day, numbered by `ids` (or, `others`, of 2,000
    other customers, each with a card, device, IP and email of their own: the shop
    around them, for PostgreSQL's statistics)."""
    now = datetime.now(UTC)
    _add_copies(
        store,
        (
            (
                f"pay_{'other' if others else 'old'}{k:06d}",
                now - timedelta(days=2, hours=8 * (k % 10_000)),
                f"other-{k % 2_000}" if others else None,
                f"10.{k % 250}.{k % 7}.1" if others else None,
            )
            for k in ids
        ),
    )


def _add_shared(store: Store, ids: range) -> None:
    """Paid payments of other customers on SHARED_IP in the last day (each with a card,
    device and email of its own), numbered by `ids`, spread over the 24 hours."""
    now = datetime.now(UTC)
    _add_copies(
        store,
        (
            (
                f"pay_nat{k:06d}",
                now - timedelta(seconds=60 + (k * 7_919) % 86_000),
                f"nat-{k}",
                SHARED_IP,
            )
            for k in ids
        ),
    )


def _add_copies(
    store: Store, copies: Iterable[tuple[str, datetime, str | None, str | None]]
) -> None:
    """Paid copies of the first payment and its decision, one for each (id, time,
    customer, IP): a customer other than None with a card, device and email of their
    own (None: the measured customer's), an IP other than None in place of the first's."""
    with store.engine.begin() as conn:
        first = sa.select(payments).where(payments.c.order_id == "o-now")
        paid = dict(conn.execute(first).one()._mapping)
        of_it = sa.select(risk_decisions).where(risk_decisions.c.payment_id == paid["id"])
        decided = dict(conn.execute(of_it).one()._mapping)
        rows, decisions = [], []
        for pid, at, who, ip in copies:
            row = {**paid, "id": pid, "order_id": pid, "created_at": at, "updated_at": at}
            decision = {**decided, "payment_id": pid, "created_at": at}
            if who is not None:
                row["customer_id"] = who
                decision.update(
                    customer_id=f"{paid['merchant_id']}/{who}",
                    card=f"fp-{who}",
                    device=f"dev-{who}",
                    email=f"e-{who}",
                )
            if ip is not None:
                decision["ip"] = ip
            rows.append(row)
            decisions.append(decision)
        conn.execute(payments.insert(), rows)
        conn.execute(risk_decisions.insert(), decisions)
    if store.engine.dialect.name == "postgresql":  # as autovacuum would, on a live database
        with store.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()


def _read_us(store: Store, mid: MerchantId, reads: int) -> float:
    """The median time of the risk read of the customer's next payment, in µs."""
    who = subjects(mid, "c-long", "c-long@example.com", SIGNALS)
    listed = [("card", who.card), ("email", who.email), ("device", who.device), ("ip", who.ip)]
    keys = assessment.HistoryKeys(mid, "c-long", who.customer, who.device, who.card, listed)
    ask = velocity_ask(datetime.now(UTC), "CNY", "")

    def measure(conn: Connection) -> float:
        took = []
        for _ in range(reads):
            t = time.perf_counter()
            assessment.read(conn, who.items(), ask, keys)
            took.append(time.perf_counter() - t)
        return statistics.median(took) * 1e6

    return store.run_sync(measure)


def _decide_us(store: Store, gate: RiskGate, mid: MerchantId, reads: int) -> float:
    """The median time of deciding a new customer's payment on SHARED_IP, in µs: its
    velocity read and count, history and rules (the decision is not stored)."""
    signals = {"device_id": "dev-nat", "ip": SHARED_IP, "card_fingerprint": "fp-nat"}
    command = _command(mid, "o-nat", "c-nat", signals)

    def measure(conn: Connection) -> float:
        took = []
        for _ in range(reads):
            t = time.perf_counter()
            gate.decide(conn, gate.prepare(command, "pay_probe"))
            took.append(time.perf_counter() - t)
        return statistics.median(took) * 1e6

    return store.run_sync(measure)


def run(url: str, folder: Path, reads: int) -> dict[str, Any]:
    upgrade(url)
    store = Store(url, inline=True)
    try:
        mid = _first_payment(store, folder)
        _add_history(store, range(OTHERS), others=True)
        none = _read_us(store, mid, reads)
        figures: dict[str, Any] = {"history_0_us": round(none, 1)}
        done = 0
        for size in SIZES:
            _add_history(store, range(done, size))
            done = size
            took = _read_us(store, mid, reads)
            figures[f"history_{size}_us"] = round(took, 1)
            figures[f"history_{size}_ratio"] = round(took / none, 2)
        last, first = SIZES[-1], SIZES[0]
        figures["growth"] = round(figures[f"history_{last}_us"] / figures[f"history_{first}_us"], 2)
        gate = RiskGate(store, SystemClock(), load(rules_file(folder)))
        alone = _decide_us(store, gate, mid, reads)
        figures["velocity_0_us"] = round(alone, 1)
        done = 0
        for size in SHARED:
            _add_shared(store, range(done, size))
            done = size
            took = _decide_us(store, gate, mid, reads)
            figures[f"velocity_{size}_us"] = round(took, 1)
            figures[f"velocity_{size}_ratio"] = round(took / alone, 2)
        last, first = SHARED[-1], SHARED[0]
        grown = figures[f"velocity_{last}_us"] / figures[f"velocity_{first}_us"]
        figures["velocity_growth"] = round(grown, 2)
        return figures
    finally:
        store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=300, help="reads timed at each size")
    parser.add_argument("--sqlite-only", action="store_true")
    parser.add_argument("--postgres-url", default=DEFAULT_PG_URL)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if args.reads < 1:
        parser.error("--reads must be at least 1")
    configure_logging("CRITICAL")
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="paymend-risk-history-") as tmp:
        folder = Path(tmp)
        result["sqlite"] = run(f"sqlite:///{folder / 'history.db'}", folder, args.reads)
        if not args.sqlite_only:
            pg = Postgres(args.postgres_url, "risk_history")
            why = pg.reachable()
            if why is None:
                try:
                    result["postgresql"] = run(pg.fresh(), folder, args.reads)
                finally:
                    pg.drop_all()
            else:
                result["postgresql"] = f"skipped: {why}"
    if args.json:
        print(json.dumps(result))
        return 0
    print(
        f"risk read of one customer and card by history, and a new customer's decision by"
        f" its IP's last day; median of {args.reads} reads"
    )
    for database, figures in result.items():
        print(f"  {database}: {figures}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
