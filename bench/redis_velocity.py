"""Redis velocity benchmark: what a busy subject costs each payment with the Redis book.

With Redis (`PAYMEND_REDIS_URL`), risk control counts velocity from one sorted set per
subject (risk/redis_velocity.py): each payment reads back every payment its card,
customer, device, IP and email made in the last 24 hours and counts them
(risk/velocity.py `aggregate`). This measures that read and count for a new
customer's payment on an IP no payment used that day, then on one that 1,000 and 5,000
other payments used (a carrier's NAT, a campus), each the median of `--reads`, and
reports each against the IP alone, measured in the same run; `growth`, the time at
5,000 over the time at 1,000, is about 5 while every payment is read back. Its keys
are written under a prefix of their own in database 15 of the server and removed at
the end.

    python bench/redis_velocity.py [--redis-url redis://127.0.0.1:6379/15] [--reads 50]
        [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import redis

from paymend.risk.features import Subjects
from paymend.risk.redis_velocity import RedisVelocity
from paymend.risk.velocity import aggregate

SIZES = (1_000, 5_000)
SHARED_IP = "100.64.0.1"  # RFC 6598, the carriers' shared address space
DAY_S = 86_400


def _fill(book: RedisVelocity, size: int, now: datetime) -> None:
    """`size` payments of other customers on the shared IP, spread over the last day,
    each with one of 500 cards; one in ten failed, one in fifty fraud-like. Written as
    payments write them (`seen`, `settled`), oldest last."""
    for key in book.client.scan_iter(f"{book.prefix}:*"):
        book.client.delete(key)
    for i in range(size):
        at = now - timedelta(seconds=(i + 1) * (DAY_S - 60) / size)
        who = Subjects(card=f"fp_{i % 500:06d}", customer="", device="", ip=SHARED_IP, email="")
        payment = f"pay_{i:012d}"
        book.seen(payment, who, 19.99, "CNY", at)
        if i % 10 == 0:
            book.settled(payment, who, i % 50 == 0, at)


def _read_us(book: RedisVelocity, now: datetime, reads: int) -> tuple[float, dict[str, float]]:
    who = Subjects(
        card="fp_new", customer="c-new", device="d-new", ip=SHARED_IP, email="new@example.com"
    )
    took, figures = [], {}
    for _ in range(reads):
        start = time.perf_counter()
        history = book.history(who, now)
        assert history is not None, "Redis did not answer"
        figures = aggregate(history, now, "CNY", exclude="pay_new")
        took.append(time.perf_counter() - start)
    return statistics.median(took) * 1e6, figures


def run(url: str, reads: int) -> dict[str, Any]:
    book = RedisVelocity.from_url(url)
    book.prefix = f"paymend-bench:{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    try:
        alone, _ = _read_us(book, now, reads)
        out: dict[str, Any] = {"velocity_0_us": round(alone, 1)}
        for size in SIZES:
            _fill(book, size, now)
            took, figures = _read_us(book, now, reads)
            if figures["ip_count_24h"] != size:  # every payment counted, or the figure lies
                raise AssertionError(f"counted {figures['ip_count_24h']} of {size}")
            out[f"velocity_{size}_us"] = round(took, 1)
            out[f"velocity_{size}_ratio"] = round(took / alone, 2)
        out["velocity_growth"] = round(out["velocity_5000_us"] / out["velocity_1000_us"], 2)
        return out
    finally:
        keys = list(book.client.scan_iter(f"{book.prefix}:*"))
        if keys:
            book.client.delete(*keys)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--reads", type=int, default=50, help="reads timed at each size")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if args.reads < 1:
        parser.error("--reads must be at least 1")
    try:
        figures = run(args.redis_url, args.reads)
    except redis.ConnectionError as exc:
        print(f"redis_velocity.py: no Redis at {args.redis_url}: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(figures))
        return 0
    print(f"Redis velocity, median of {args.reads} reads and counts of a new customer's payment")
    print(f"  IP alone        {figures['velocity_0_us']:>10.1f} us")
    for size in SIZES:
        us, ratio = figures[f"velocity_{size}_us"], figures[f"velocity_{size}_ratio"]
        print(f"  {size:>5,} that day  {us:>10.1f} us  x{ratio}")
    print(f"  growth (5,000 over 1,000): {figures['velocity_growth']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
