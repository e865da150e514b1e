"""Detector calibration: false alarms on healthy traffic, seconds to detect a fault.

What is simulated
-----------------
One key's calls, second by second, from a seeded `random.Random`: Poisson arrivals, each
call a business decline (the payer's bank), else a technical failure with the key's error
rate (a share of answered calls), else a success; its latency is lognormal and lands in
the histogram buckets of `paymend.health.window`, as the real windows store it.

A check runs the detectors of `paymend.health.detectors` once a second, on a recent
window of the last W complete seconds (W = 5 or 10) and a baseline of the 300 s before
it, as a playbook evaluator would.

False alarms
    Long healthy streams, checked every second. `any/check` counts checks where any
    detector fired. Checks overlap (one odd second is in W windows), so the 95% upper
    bound is taken from the disjoint checks only (one every W s): 3/N when none fired,
    else the exact Poisson bound. The aim is under 1e-4 per check per key, all four
    detectors together. Keys: the brief's healthy key (20 calls/s, 0.3% technical
    errors, 3% declines, p95 ~570 ms); the same key "swinging" (every 10 s its traffic,
    error rate and median latency are redrawn around their means by lognormal factors
    of sigma 0.1, 0.5 and 0.15: the wander a steady Poisson key lacks, an assumption);
    a key at the 2% error floor, where the exact tests rather than the size thresholds
    hold the line; and quiet keys at 2 calls/s, where minimum volumes decide.

Detection
    Each trial is 310 s of healthy traffic, then a fault for 30 s: error rates of
    20/50/100%, latency x3, traffic -70%, and a wave of 40% declines (which must fire
    nothing). Seconds to detect = seconds of fault data in the window at the first
    check that fires; a fault not caught within 30 s counts as missed.

`--sweep` varies one setting at a time on the same streams (30,000 s per key), to show
what each default buys and costs: speed against false alarms.

    python bench/detectors.py [--seconds 320000] [--trials 300] [--seed 1] [--sweep]
                              [--quick] [--json]

The default run takes about three minutes on one core, --sweep included; --quick
(20,000 s per key, 100 trials) about 10 s, too short to bound false alarms under 1e-4.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from array import array
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from paymend.health.detectors import (
    DEFAULT_SETTINGS,
    DetectorSettings,
    Signal,
    error_spike,
    latency_spike,
    poisson_lower_tail,
    success_drop,
    traffic_drop,
)
from paymend.health.window import LATENCY_BOUNDS_MS, WindowStats

BASELINE_S = 300
WINDOWS_S = (5, 10)
HORIZON_S = 30
WIDTH = 4 + len(LATENCY_BOUNDS_MS) + 1  # success, business, technical, unknown, buckets
DETECTORS = ("error_spike", "success_drop", "latency_spike", "traffic_drop")
TARGET_FA = 1e-4


# -- traffic ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Traffic:
    name: str
    rate: float = 20.0  # calls per second
    technical: float = 0.003  # share of answered calls that fail technically
    business: float = 0.03  # share of all calls the payer's bank declines
    median_ms: float = 250.0  # lognormal latency: p95 = median * e^(1.645 sigma) ~ 570 ms
    sigma: float = 0.5
    swing: tuple[float, float, float] | None = None
    """Every SWING_S seconds, redraw traffic, error rate and median latency around their
    means by lognormal factors with these sigmas: the slow wander of real traffic that a
    steady Poisson key lacks."""

    def swung(self, rnd: random.Random) -> Traffic:
        if self.swing is None:
            return self
        rate, errors, latency = (rnd.lognormvariate(-sg * sg / 2, sg) for sg in self.swing)
        return replace(
            self,
            rate=self.rate * rate,
            technical=min(1.0, self.technical * errors),
            median_ms=self.median_ms * latency,
        )

    def bucket_cdf(self) -> list[float]:
        """P(latency <= bound) for each bucket bound: one uniform draw picks a bucket."""
        mu = math.log(self.median_ms)
        return [
            0.5 * math.erfc(-(math.log(b) - mu) / (self.sigma * math.sqrt(2)))
            for b in LATENCY_BOUNDS_MS
        ]


SWING_S = 10
HEALTHY = Traffic("20/s, 0.3% errors")
NULLS = (
    HEALTHY,
    Traffic("20/s, 0.3% errors, swinging", swing=(0.1, 0.5, 0.15)),
    Traffic("20/s, 2% errors (at the floor)", technical=0.02),
    Traffic("2/s, 0.3% errors (quiet)", rate=2.0),
    Traffic("2/s, 2% errors (quiet, at the floor)", rate=2.0, technical=0.02),
)
ERRORS = ("error_spike", "success_drop")
FAULTS: tuple[tuple[Traffic, tuple[str, ...]], ...] = (  # each with the detectors for it
    (replace(HEALTHY, name="errors 20%", technical=0.2), ERRORS),
    (replace(HEALTHY, name="errors 50%", technical=0.5), ERRORS),
    (replace(HEALTHY, name="errors 100%", technical=1.0), ERRORS),
    (replace(HEALTHY, name="latency x3", median_ms=3 * HEALTHY.median_ms), ("latency_spike",)),
    (replace(HEALTHY, name="traffic -70%", rate=0.3 * HEALTHY.rate), ("traffic_drop",)),
    (replace(HEALTHY, name="declines 40% (must not fire)", business=0.4), ()),
)


def poisson(rnd: random.Random, lam: float) -> int:
    """Poisson by inversion: one uniform, a few dozen steps at these rates."""
    u, k = rnd.random(), 0
    term = total = math.exp(-lam)
    while u > total and term > 0.0:
        k += 1
        term *= lam / k
        total += term
    return k


class Stream:
    """Per-second outcome rows of one key, kept as prefix sums so a window of any length
    reads in WIDTH subtractions."""

    def __init__(self, cum: array[int] | None = None) -> None:
        self.cum: array[int] = array("q", cum if cum is not None else [0] * WIDTH)

    @property
    def seconds(self) -> int:
        return len(self.cum) // WIDTH - 1

    def copy(self) -> Stream:
        return Stream(self.cum)

    def extend(self, rnd: random.Random, traffic: Traffic, seconds: int) -> None:
        for second in range(seconds):
            if second % SWING_S == 0:
                t = traffic.swung(rnd)
                cdf = t.bucket_cdf()
                declined = t.business
                failed = t.business + (1 - t.business) * t.technical
            row = [0] * WIDTH
            for _ in range(poisson(rnd, t.rate)):
                u = rnd.random()
                row[1 if u < declined else 2 if u < failed else 0] += 1
                row[4 + bisect_left(cdf, rnd.random())] += 1
            last = self.cum[-WIDTH:]
            self.cum.extend(a + b for a, b in zip(last, row, strict=True))

    def window(self, start: int, stop: int) -> WindowStats:
        """Seconds [start, stop)."""
        a, b = start * WIDTH, stop * WIDTH
        return WindowStats.from_row([self.cum[b + i] - self.cum[a + i] for i in range(WIDTH)])


def check(
    stream: Stream, t: int, w: int, s: DetectorSettings, names: Sequence[str]
) -> list[Signal]:
    """The detectors `names` at the end of second t, on the last w seconds."""
    recent = stream.window(t - w, t)
    base = stream.window(t - w - BASELINE_S, t - w)
    run: dict[str, Callable[[], Signal]] = {
        "error_spike": lambda: error_spike(recent, base, s),
        "success_drop": lambda: success_drop(recent, base, s),
        "latency_spike": lambda: latency_spike(recent, base, s),
        "traffic_drop": lambda: traffic_drop(recent, base, w, BASELINE_S, s),
    }
    return [run[name]() for name in names]


# -- measurements -------------------------------------------------------------------------


def upper95(alarms: int, checks: int) -> float:
    """Exact 95% upper bound on a per-check rate from `alarms` in `checks` independent
    checks (Poisson): 3/N when none fired."""
    if checks == 0:
        return math.inf
    lo, hi = 0.0, 10.0 * alarms + 10.0
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if poisson_lower_tail(alarms, mid) > 0.05 else (lo, mid)
    return hi / checks


@dataclass
class FalseAlarms:
    traffic: str
    window_s: int
    checks: int
    alarms: dict[str, int]
    any: int
    disjoint_checks: int
    disjoint_any: int

    @property
    def rate(self) -> float:
        return self.any / self.checks if self.checks else 0.0

    @property
    def bound(self) -> float:
        return upper95(self.disjoint_any, self.disjoint_checks)


def false_alarms(
    stream: Stream,
    traffic: str,
    w: int,
    s: DetectorSettings,
    names: Sequence[str],
    seconds: int | None = None,
) -> FalseAlarms:
    """Check every second of a healthy stream (its first `seconds`, or all of it)."""
    alarms = dict.fromkeys(names, 0)
    any_, d_checks, d_any = 0, 0, 0
    first = BASELINE_S + w
    last = stream.seconds if seconds is None else min(seconds, stream.seconds)
    for t in range(first, last + 1):
        fired = [sig.name for sig in check(stream, t, w, s, names) if sig.fired]
        for name in fired:
            alarms[name] += 1
        any_ += bool(fired)
        if (t - first) % w == 0:
            d_checks += 1
            d_any += bool(fired)
    return FalseAlarms(traffic, w, last + 1 - first, alarms, any_, d_checks, d_any)


@dataclass
class Detection:
    fault: str
    window_s: int
    trials: int
    targets: tuple[str, ...]  # the detectors meant to catch this fault
    firsts: dict[str, list[int | None]] = field(default_factory=dict)
    """Per detector (and "any": the first of them), seconds of fault data at the first
    check that fired, per trial; None when it never fired within HORIZON_S."""

    def detected(self, name: str, within: int = HORIZON_S) -> float:
        hits = [f for f in self.firsts[name] if f is not None and f <= within]
        return len(hits) / self.trials

    def seconds(self, name: str, q: float) -> int | None:
        """The q-quantile of seconds to detect, counting misses as never (None)."""
        firsts = sorted((f if f is not None else math.inf) for f in self.firsts[name])
        x = firsts[min(len(firsts) - 1, max(0, math.ceil(q * len(firsts)) - 1))]
        return None if x == math.inf else int(x)

    def summary(self) -> dict[str, Any]:
        return {
            name: {
                "detected_within_window": round(self.detected(name, self.window_s), 4),
                "detected_within_30s": round(self.detected(name), 4),
                "median_s": self.seconds(name, 0.5),
                "p90_s": self.seconds(name, 0.9),
            }
            for name in self.firsts
        }


def simulate_faults(rnd: random.Random, trials: int) -> dict[str, list[Stream]]:
    """Per fault, `trials` streams: healthy history, then HORIZON_S seconds of fault.
    A trial's healthy history is shared by its faults (common random numbers: the faults
    differ by the fault alone)."""
    out: dict[str, list[Stream]] = {fault.name: [] for fault, _ in FAULTS}
    for _ in range(trials):
        history = Stream()
        history.extend(rnd, HEALTHY, BASELINE_S + max(WINDOWS_S))
        for fault, _ in FAULTS:
            stream = history.copy()
            stream.extend(rnd, fault, HORIZON_S)
            out[fault.name].append(stream)
    return out


def detection(
    streams: list[Stream],
    fault: str,
    targets: tuple[str, ...],
    w: int,
    s: DetectorSettings,
    names: Sequence[str],
) -> Detection:
    """Check once a second from the fault's onset; record when each detector first fires."""
    d = Detection(fault, w, len(streams), targets, {n: [] for n in (*names, "any")})
    onset = BASELINE_S + max(WINDOWS_S)
    for stream in streams:
        first: dict[str, int | None] = dict.fromkeys((*names, "any"))
        for j in range(1, HORIZON_S + 1):
            for sig in check(stream, onset + j, w, s, names):
                if sig.fired:
                    first[sig.name] = first[sig.name] or j
                    first["any"] = first["any"] or j
            if all(v is not None for v in first.values()):
                break
        for name, at in first.items():
            d.firsts[name].append(at)
    return d


# -- report -------------------------------------------------------------------------------


def _cell(d: Detection, name: str) -> str:
    share = d.detected(name)
    if share == 0:
        return "0%"
    med, p90 = d.seconds(name, 0.5), d.seconds(name, 0.9)
    return f"{share:.0%} {'-' if med is None else med}/{'-' if p90 is None else p90}s"


def print_tables(fas: list[FalseAlarms], dets: list[Detection]) -> None:
    print("\nFalse alarms per check (healthy keys, all four detectors every second)")
    head = f"{'traffic':38} {'W':>3} {'checks':>8}"
    head += "".join(f" {n:>13}" for n in DETECTORS) + f" {'any/check':>10} {'95% bound':>10}"
    print(head)
    for fa in fas:
        line = f"{fa.traffic:38} {fa.window_s:>2}s {fa.checks:>8,}"
        line += "".join(f" {fa.alarms[n]:>13}" for n in DETECTORS)
        print(line + f" {fa.rate:>10.1e} {fa.bound:>10.1e}")
    print("\nDetection (fault from 0 s: share of trials fired within 30 s, median/p90 seconds")
    print(" of fault data at the first firing check)")
    print(f"{'fault':30} {'W':>3}" + "".join(f" {n:>14}" for n in (*DETECTORS, "any")))
    for d in dets:
        cells = "".join(f" {_cell(d, n):>14}" for n in (*DETECTORS, "any"))
        print(f"{d.fault:30} {d.window_s:>2}s{cells}")


# knob -> (values tried, the detectors it moves)
SWEEP: dict[str, tuple[tuple[float, ...], tuple[str, ...]]] = {
    "alpha": ((1e-3, 1e-4, 1e-5, 1e-6, 1e-8), DETECTORS),
    "error_threshold": ((0.1, 0.2, 0.3), ("error_spike",)),
    "success_min_drop": ((0.05, 0.1, 0.2), ("success_drop",)),
    "latency_ratio": ((1.5, 2.0, 3.0), ("latency_spike",)),
    "traffic_drop_ratio": ((0.3, 0.4, 0.5, 0.7), ("traffic_drop",)),
}
SWEEP_SECONDS = 30_000  # healthy seconds per null in the sweep


def sweep(nulls: list[tuple[str, Stream]], faults: dict[str, list[Stream]]) -> list[dict[str, Any]]:
    """One setting at a time, at W = 5 s: false alarms of the detectors it moves (all the
    nulls pooled) and the median seconds each fault takes to fire one of them."""
    rows: list[dict[str, Any]] = []
    w = WINDOWS_S[0]
    for knob, (values, names) in SWEEP.items():
        for value in values:
            overrides: dict[str, Any] = {knob: value}
            s = replace(DEFAULT_SETTINGS, **overrides)
            fas = [false_alarms(st, name, w, s, names, SWEEP_SECONDS) for name, st in nulls]
            row: dict[str, Any] = {
                "knob": knob,
                "value": value,
                "detectors": list(names),
                "checks": sum(f.checks for f in fas),
                "alarms": sum(f.any for f in fas),
                "median_s": {},
            }
            for fault, targets in FAULTS:
                moved = tuple(n for n in targets if n in names)
                if moved:
                    d = detection(faults[fault.name], fault.name, targets, w, s, moved)
                    row["median_s"][fault.name] = d.seconds("any", 0.5)
            rows.append(row)
    return rows


def print_sweep(rows: list[dict[str, Any]]) -> None:
    faults = [f.name for f, t in FAULTS if t]
    print(f"\nSweep (W = {WINDOWS_S[0]} s, one setting at a time, * = default): alarms of the")
    print(" detectors the setting moves, all nulls pooled, and the median seconds each fault")
    print(" takes to fire one of them ('-' = under half the trials within 30 s)")
    print(f"{'setting':30} {'alarms/checks':>15}" + "".join(f" {f:>13}" for f in faults))
    for r in rows:
        mark = " *" if getattr(DEFAULT_SETTINGS, r["knob"]) == r["value"] else ""
        setting = f"{r['knob']} = {r['value']:g}{mark}"
        alarms = f"{r['alarms']}/{r['checks']:,}"
        secs = r["median_s"]
        cells = "".join(
            f" {'' if f not in secs else '-' if secs[f] is None else secs[f]:>13}" for f in faults
        )
        print(f"{setting:30} {alarms:>15}{cells}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=320_000, help="healthy seconds per null")
    parser.add_argument("--trials", type=int, default=300, help="trials per fault")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sweep", action="store_true", help="vary one setting at a time")
    parser.add_argument("--quick", action="store_true", help="--seconds 20000 --trials 100")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.trials = 20_000, 100
    if args.seconds < 10 * BASELINE_S or args.trials < 10:
        parser.error("--seconds must be at least 3000 and --trials at least 10")
    say: Callable[[str], None] = (
        (lambda m: print(m, file=sys.stderr)) if args.json else (lambda m: print(m))
    )
    say(
        f"paymend detector calibration: {args.seconds:,} healthy s per null,"
        f" {args.trials} trials per fault, baseline {BASELINE_S} s, seed {args.seed}"
    )
    say(f"settings: {DEFAULT_SETTINGS}")
    started = time.perf_counter()
    rnd = random.Random(args.seed)
    nulls: list[tuple[str, Stream]] = []
    for t in NULLS:
        stream = Stream()
        stream.extend(rnd, t, args.seconds)
        nulls.append((t.name, stream))
    faults = simulate_faults(rnd, args.trials)
    fas = [
        false_alarms(stream, name, w, DEFAULT_SETTINGS, DETECTORS)
        for name, stream in nulls
        for w in WINDOWS_S
    ]
    dets = [
        detection(faults[fault.name], fault.name, targets, w, DEFAULT_SETTINGS, DETECTORS)
        for fault, targets in FAULTS
        for w in WINDOWS_S
    ]
    rows = sweep(nulls, faults) if args.sweep else []
    total = round(time.perf_counter() - started, 1)
    worst = max(fa.rate for fa in fas)
    worst_bound = max(fa.bound for fa in fas)
    fifty = next(d for d in dets if d.fault == "errors 50%" and d.window_s == WINDOWS_S[0])
    fifty_s = fifty.seconds("error_spike", 0.5)
    wave_fired = max(d.detected("any") for d in dets if not d.targets)
    if args.json:
        out = {
            "seconds_per_null": args.seconds,
            "trials": args.trials,
            "seed": args.seed,
            "baseline_s": BASELINE_S,
            "settings": asdict(DEFAULT_SETTINGS),
            "false_alarms": [asdict(fa) | {"rate": fa.rate, "upper95": fa.bound} for fa in fas],
            "detection": [
                {"fault": d.fault, "window_s": d.window_s, "targets": list(d.targets)}
                | {"detectors": d.summary()}
                for d in dets
            ],
            "sweep": rows,
            "worst_false_alarm_rate": worst,
            "worst_false_alarm_upper95": worst_bound,
            "errors_50_median_s": fifty_s,
            "decline_wave_fired": wave_fired,
            "seconds": total,
        }
        print(json.dumps(out, indent=2))
        return 0
    print_tables(fas, dets)
    if rows:
        print_sweep(rows)
    print(
        f"\nSUMMARY false alarms per check: worst {worst:.1e} (aim < {TARGET_FA:g}:"
        f" {'met' if worst < TARGET_FA else 'NOT met'}), worst 95% bound {worst_bound:.1e};"
        f" 50% errors detected in a median"
        f" {fifty_s} s at W={WINDOWS_S[0]} s; decline wave fired"
        f" {'nothing' if wave_fired == 0 else f'in {wave_fired:.0%} of trials'}; {total:.0f}s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
