"""Routing benchmark: time per payment of health-aware `ranking.rank`, against the static
priority list it replaced (`static_rank` below), and against the 1 ms budget.

What is measured
----------------
Routing runs once per payment on the checkout's path, so it must stay far below the
provider call it precedes. Both rankers route the same N payment contexts, drawn once
from a seeded generator: mostly cards, some Alipay and WeChat Pay; CNY, USD and JPY;
eight banks (two without any window yet), three regions or none, amounts log-uniform
from 1 to 100 000 major units. Three channels: two take cards, the third takes every
method.

The health snapshot is what the engine will hand routing: a dict of `WindowStats` by key,
read through `dict.get`. It holds ~50 keys (each channel, and each channel x method,
bank, region and amount band a real window would have seen), with one sick bank on one
channel so the scoped estimates matter. The rules are a typical merchant's: a volume
split between the two card channels and 2% exploration.

Each ranker runs over all N contexts `--repeat` times and the best pass is reported (as
`timeit` does: the others only measured noise on this machine); then a separate pass
times each call on its own for the p50 and p99. The ratio ranking/static says what the
health-aware ranking costs over the static list; the target is an absolute one: under
1 ms (1000 µs) per payment at p99.

    python bench/routing.py [--n 20000] [--repeat 5] [--seed 1] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from paymend.domain.channel import Capabilities
from paymend.health.keys import AMOUNT_BANDS, channel_key, scoped_key
from paymend.health.window import WindowStats
from paymend.routing import ranking
from paymend.routing.ranking import PaymentContext, RoutingRules

TARGET_US = 1000.0


def static_rank(ctx: PaymentContext) -> tuple[tuple[str, ...], str]:
    """The baseline: what routing did before health-aware ranking, the merchant's list
    filtered to the channels that can take the payment, with its reason."""
    eligible = tuple(
        name
        for name in CHANNELS
        if CAPABILITIES[name].supports(ctx.method, ctx.currency, ctx.region)
    )
    skipped = [n for n in CHANNELS if n not in eligible]
    reason = "merchant priority list"
    if skipped:
        reason += f"; skipped {', '.join(skipped)} (cannot take {ctx.method}/{ctx.currency})"
    return eligible, reason


CHANNELS = ("sim_a", "sim_b", "sim_c")
CAPABILITIES = {
    "sim_a": Capabilities(frozenset({"card"})),
    "sim_b": Capabilities(frozenset({"card"}), currencies=frozenset({"CNY", "USD", "JPY"})),
    "sim_c": Capabilities(frozenset({"card", "alipay", "wechat"})),
}
COSTS = {"sim_a": 60.0, "sim_b": 55.0, "sim_c": 80.0}
RULES = RoutingRules(CHANNELS, split={"sim_a": 0.6, "sim_b": 0.4}, exploration=0.02)

METHODS = ("card", "alipay", "wechat")
METHOD_WEIGHTS = (0.8, 0.12, 0.08)
CURRENCIES = ("CNY", "USD", "JPY")
BANKS_SEEN = ("CMB", "ICBC", "ABC", "BOC", "CCB", "SPDB")
BANKS = (*BANKS_SEEN, "PAB", "HXB")  # the last two have no window yet
REGIONS = ("CN-East", "CN-North", "CN-South", None)
EXPONENT = {"CNY": 2, "USD": 2, "JPY": 0}


# -- inputs -------------------------------------------------------------------------------


def health_snapshot(rng: random.Random) -> dict[str, WindowStats]:
    """~50 windows: every channel, and the scopes each has seen traffic in."""

    def window(calls: int, error_rate: float) -> WindowStats:
        bad = round(calls * error_rate)
        return WindowStats(
            success=calls - bad, business=calls // 20, technical=bad - bad // 4, unknown=bad // 4
        )

    snapshot: dict[str, WindowStats] = {}
    for ch in CHANNELS:
        snapshot[channel_key(ch)] = window(rng.randint(2000, 6000), rng.uniform(0.001, 0.01))
        for method in sorted(CAPABILITIES[ch].methods):
            snapshot[scoped_key(ch, "method", method)] = window(rng.randint(200, 3000), 0.004)
        for bank in BANKS_SEEN:
            if ch == "sim_c" and bank in ("BOC", "CCB"):
                continue  # not every channel has seen every bank
            snapshot[scoped_key(ch, "bank", bank)] = window(rng.randint(50, 800), 0.005)
        for region in REGIONS[:-1]:
            snapshot[scoped_key(ch, "region", region)] = window(rng.randint(300, 2000), 0.004)
        for band in AMOUNT_BANDS:
            snapshot[scoped_key(ch, "amount", band)] = window(rng.randint(100, 2000), 0.004)
    snapshot[scoped_key("sim_a", "bank", "CMB")] = window(300, 0.35)  # one sick bank
    return snapshot


def contexts(rng: random.Random, n: int) -> list[PaymentContext]:
    out = []
    for _ in range(n):
        currency = rng.choice(CURRENCIES)
        major = 10 ** rng.uniform(0, 5)
        out.append(
            PaymentContext(
                method=rng.choices(METHODS, METHOD_WEIGHTS)[0],
                currency=currency,
                region=rng.choice(REGIONS),
                bank=rng.choice(BANKS),
                amount_minor=max(1, round(major * 10 ** EXPONENT[currency])),
            )
        )
    return out


# -- timing -------------------------------------------------------------------------------


@dataclass
class Timing:
    name: str
    mean_us: float
    p50_us: float
    p99_us: float


def measure(name: str, route: Callable[[PaymentContext], object], ctxs: list[PaymentContext],
            repeat: int) -> Timing:  # fmt: skip
    for ctx in ctxs[: min(len(ctxs), 2000)]:  # warm-up
        route(ctx)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter_ns()
        for ctx in ctxs:
            route(ctx)
        best = min(best, (time.perf_counter_ns() - start) / len(ctxs))
    each = []
    clock = time.perf_counter_ns
    for ctx in ctxs:
        t0 = clock()
        route(ctx)
        each.append(clock() - t0)
    each.sort()
    return Timing(
        name,
        round(best / 1000, 2),
        round(each[len(each) // 2] / 1000, 2),
        round(each[min(len(each) - 1, int(len(each) * 0.99))] / 1000, 2),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="payment contexts per pass")
    parser.add_argument("--repeat", type=int, default=5, help="passes; the best is kept")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.n < 1 or args.repeat < 1:
        parser.error("--n and --repeat must be positive")

    rng = random.Random(args.seed)
    snapshot = health_snapshot(rng)
    ctxs = contexts(rng, args.n)
    lookup = snapshot.get
    pick = random.Random(args.seed + 1)
    if not args.json:
        print(
            f"paymend routing benchmark: {args.n} payments x {args.repeat} passes,"
            f" {len(CHANNELS)} channels, {len(snapshot)} health keys,"
            f" Python {platform.python_version()}, {os.cpu_count()} CPUs"
        )

    def health_aware(ctx: PaymentContext) -> object:
        return ranking.rank(ctx, RULES, CAPABILITIES, COSTS, lookup, pick)

    def static(ctx: PaymentContext) -> object:
        return static_rank(ctx)

    started = time.perf_counter()
    base = measure("static priority list", static, ctxs, args.repeat)
    health = measure("ranking.rank (health-aware)", health_aware, ctxs, args.repeat)
    ratio = round(health.mean_us / base.mean_us, 1)
    met = health.p99_us < TARGET_US
    firsts: dict[str, int] = {}
    for ctx in ctxs:
        route = ranking.rank(ctx, RULES, CAPABILITIES, COSTS, lookup, random.Random(0))
        first = route.channels[0] if route.channels else "(none)"
        firsts[first] = firsts.get(first, 0) + 1
    seconds = round(time.perf_counter() - started, 1)

    if args.json:
        print(
            json.dumps(
                {
                    "n": args.n,
                    "repeat": args.repeat,
                    "seed": args.seed,
                    "health_keys": len(snapshot),
                    "results": [asdict(base), asdict(health)],
                    "ratio_ranking_over_priority": ratio,
                    "target_us": TARGET_US,
                    "meets_target": met,
                    "first_choice_counts": firsts,
                    "seconds": seconds,
                },
                indent=2,
            )
        )
        return 0
    print(f"\n  {'':<30}{'mean µs':>10}{'p50 µs':>10}{'p99 µs':>10}")
    for t in (base, health):
        print(f"  {t.name:<30}{t.mean_us:>10.2f}{t.p50_us:>10.2f}{t.p99_us:>10.2f}")
    print(f"  first choices: {firsts}")
    print(
        f"\nSUMMARY ranking {health.mean_us:.1f} µs/payment (p99 {health.p99_us:.1f}) vs"
        f" priority {base.mean_us:.2f} µs: x{ratio}; target p99 < {TARGET_US:.0f} µs:"
        f" {'met' if met else 'NOT met'}; {seconds:.0f}s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
