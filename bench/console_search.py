"""The console's payments search over 100,000 payments on SQLite: does a page load answer
in under 300 ms (issue 16)? Beside it, in the same run, the bare query the page stands
on (engine/listing.py's read of one page, in-process), so the page's own cost shows.

A SQLite database gets `--payments` payments of one merchant with an attempt each
(written straight into the tables, as a week of traffic would leave them: 92% paid,
the rest declined with one of four codes, over two channels). Then `paymend serve`
runs on it; an operator with a console password logs in, and each search is loaded
`--repeat` times over HTTP: the first page of everything, by order id, failed with a
failure code, by channel, and by a time range. The database's statistics are those
`paymend db upgrade` gathers once the data is there (`--no-analyze`: none, the baseline).

    .venv/bin/python bench/console_search.py [--payments 100000] [--repeat 20] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import sqlalchemy as sa

from paymend.domain.ids import AttemptId, MerchantId, PaymentId
from paymend.domain.money import Money
from paymend.domain.payment import Attempt, AttemptStatus, Customer, Payment, PaymentStatus
from paymend.engine import listing
from paymend.store.database import Store
from paymend.store.listing import PaymentQuery
from paymend.store.payment_rows import attempt_row, payment_row
from paymend.store.pii import customer_columns
from paymend.store.tables import attempts, merchants, payments
from servers import Paymend, wait_healthy

TARGET_MS = 300.0
CODES = ("do_not_honor", "insufficient_funds", "expired_card", "generic_decline")
START = datetime(2026, 11, 24, tzinfo=UTC)
PASSWORD = "bench console password"


@dataclass
class Timing:
    search: str
    page_p50_ms: float
    page_p95_ms: float
    bare_p50_ms: float
    rows: int


def fill(url: str, n: int) -> str:
    """`n` payments of the bench merchant, each with its attempt; its id."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        merchant_id: str = conn.execute(sa.select(merchants.c.id)).scalar_one()
    step = timedelta(days=7) / n
    batch_p: list[dict[str, object]] = []
    batch_a: list[dict[str, object]] = []
    for i in range(n):
        at = START + step * i
        failed = i % 13 == 0
        p = Payment(
            PaymentId(f"pay_bench{i:08d}"),
            MerchantId(merchant_id),
            f"order-{i}",
            Money(1000 + i % 5000, "CNY"),
            "card",
            status=PaymentStatus.FAILED if failed else PaymentStatus.SUCCEEDED,
            bank=("ICBC", "CMB", "CCB")[i % 3],
            region="CN-East",
            customer=Customer(id=f"c-{i % 20000}", locale="zh-CN"),
            failure_code=CODES[i % 4] if failed else None,
            created_at=at,
            updated_at=at,
        )
        a = Attempt(
            AttemptId(f"att_bench{i:08d}"),
            p.id,
            1,
            ("sim", "sim_b")[i % 2],
            status=AttemptStatus.FAILED if failed else AttemptStatus.SUCCEEDED,
            unified_code=p.failure_code,
            latency_ms=120,
            created_at=at,
            finished_at=at,
        )
        batch_p.append(
            {**payment_row(p), **customer_columns(None, p.id, p.customer), "created_at": at}
        )
        batch_a.append(attempt_row(a))
        if len(batch_p) == 5000 or i == n - 1:
            with engine.begin() as conn:
                conn.execute(payments.insert(), batch_p)
                conn.execute(attempts.insert(), batch_a)
            batch_p, batch_a = [], []
    engine.dispose()
    return merchant_id


def timed(get: object, repeat: int) -> list[float]:
    spent = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        get()  # type: ignore[operator]
        spent.append((time.perf_counter() - t0) * 1000)
    return spent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payments", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--no-analyze",
        action="store_true",
        help="leave SQLite without the statistics `paymend db upgrade` gathers (the baseline)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        url = f"sqlite:///{workdir / 'bench.db'}"
        paymend = Paymend.prepare(workdir, url)
        t0 = time.perf_counter()
        merchant_id = fill(url, args.payments)
        filled_s = time.perf_counter() - t0
        bin_ = Path(sys.executable).with_name("paymend")
        if not args.no_analyze:  # as an upgrade over a database with data does (store/migrate.py)
            subprocess.run(
                [str(bin_), "db", "upgrade"], env=paymend.env, cwd=workdir, check=True,
                capture_output=True,
            )  # fmt: skip
        subprocess.run(
            [str(bin_), "operators", "create", "bench-ops", "--role", "support"],
            env=paymend.env, cwd=workdir, check=True, capture_output=True,
        )  # fmt: skip
        subprocess.run(
            [str(bin_), "operators", "password", "bench-ops", "--stdin"],
            input=(PASSWORD + "\n").encode(), env=paymend.env, cwd=workdir, check=True,
            capture_output=True,
        )  # fmt: skip
        server = paymend.start()
        store = Store(url)
        try:
            wait_healthy(server)
            results = measure(server.url, store, merchant_id, args)
        finally:
            server.stop()
            store.close()
    if args.json:
        print(json.dumps({"payments": args.payments, "results": [asdict(r) for r in results]}))
    else:
        print(f"{args.payments} payments on SQLite (filled in {filled_s:.0f}s)")
        print(f"{'search':<28} {'page p50':>9} {'page p95':>9} {'bare p50':>9} {'rows':>5}")
        for r in results:
            print(
                f"{r.search:<28} {r.page_p50_ms:>7.1f}ms {r.page_p95_ms:>7.1f}ms"
                f" {r.bare_p50_ms:>7.1f}ms {r.rows:>5}"
            )
    worst = max(r.page_p95_ms for r in results)
    print(f"worst page p95 {worst:.0f} ms; target < {TARGET_MS:.0f} ms", file=sys.stderr)
    return 0 if worst < TARGET_MS else 1


def measure(base: str, store: Store, merchant_id: str, args: argparse.Namespace) -> list[Timing]:
    mid = START + timedelta(days=3)
    searches: list[tuple[str, dict[str, str], PaymentQuery]] = [
        ("everything, first page", {}, PaymentQuery()),
        ("order id", {"order_id": "order-77777"}, PaymentQuery(order_id="order-77777")),
        (
            "failed, one failure code",
            {"status": "failed", "failure_code": "expired_card"},
            PaymentQuery(statuses=(PaymentStatus.FAILED,), failure_code="expired_card"),
        ),
        ("channel", {"channel": "sim_b"}, PaymentQuery(channel="sim_b")),
        (
            "one hour",
            {"created_gte": mid.strftime("%Y-%m-%dT%H:%M"),
             "created_lt": (mid + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")},
            PaymentQuery(created_gte=mid, created_lt=mid + timedelta(hours=1)),
        ),
    ]  # fmt: skip
    found = []
    with httpx.Client(base_url=base, timeout=30) as client:
        page = client.get("/console/login")
        token = re.search(r'name="login_token" value="([^"]+)"', page.text)
        assert token is not None
        client.post(
            "/console/login",
            data={"login_token": token.group(1), "name": "bench-ops", "password": PASSWORD},
        )
        for name, params, query in searches:
            answer = client.get("/console/payments", params=params)
            answer.raise_for_status()
            rows = answer.text.count('href="/console/payments/pay_')

            def page_load(params: dict[str, str] = params) -> None:
                client.get("/console/payments", params=params).raise_for_status()

            def bare(query: PaymentQuery = query) -> None:
                asyncio.run(listing.payments(store, merchant_id, query, 50))

            spent = sorted(timed(page_load, args.repeat))
            bare_ms = timed(bare, args.repeat)
            found.append(
                Timing(
                    name,
                    statistics.median(spent),
                    spent[max(0, int(len(spent) * 0.95) - 1)],
                    statistics.median(bare_ms),
                    rows,
                )
            )
    return found


if __name__ == "__main__":
    sys.exit(main())
