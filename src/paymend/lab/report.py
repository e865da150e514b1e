"""A lab run as a person reads it: report.md and three plots.

- success over time, paymend against the naive checkout and the oracle, with the fault
  windows shaded and named;
- traffic per channel over time: where paymend sent the calls while channels failed;
- checkout latency over time (p50 and p99) against the checkout deadline.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any, Literal

import matplotlib

matplotlib.use("Agg")  # files only, no screen

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from paymend.lab.fraud import FRAUD_FIGURES
from paymend.lab.journeys import JOURNEY_FIGURES
from paymend.lab.metrics import HEADLINE, naive_outcomes, percentile, succeeded, verdicts
from paymend.lab.notices import NOTICE_FIGURES
from paymend.lab.oracle import Verdict
from paymend.lab.runner import CHECKOUT_DEADLINE_S, Run

SUCCESS = ("succeeded", "partially_refunded", "refunded")
COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2"]


def _bucket_s(run: Run) -> float:
    return max(5.0, math.ceil(run.scenario.duration / 80 / 5) * 5)


def _success_series(
    run: Run, judged: list[Verdict], size: float
) -> tuple[list[float], list[float], list[float], list[float]]:
    """Per bucket of arrivals: the share paymend, the oracle and the naive checkout saved."""
    total: dict[int, int] = defaultdict(int)
    ok: dict[int, int] = defaultdict(int)
    oracle: dict[int, int] = defaultdict(int)
    plain: dict[int, int] = defaultdict(int)
    for a, v, n in zip(run.arrivals, judged, naive_outcomes(run), strict=True):
        b = int(a.t // size)
        total[b] += 1
        ok[b] += succeeded(run, a)
        oracle[b] += v.possible
        plain[b] += n.succeeded
    keys = sorted(total)
    return (
        [(k + 0.5) * size / 60 for k in keys],
        [ok[k] / total[k] for k in keys],
        [oracle[k] / total[k] for k in keys],
        [plain[k] / total[k] for k in keys],
    )


def _shade_faults(ax: Axes, run: Run) -> None:
    for i, fault in enumerate(run.scenario.faults):
        scope = "/".join(
            str(v) for v in (fault.channel, fault.method, fault.bank, fault.region) if v
        )
        ax.axvspan(
            fault.at / 60,
            fault.end / 60,
            color="red" if fault.kind != "payer" else "grey",
            alpha=0.08 + 0.04 * (i % 2),
        )
        ax.text(
            (fault.at + fault.end) / 120,
            1.0 - 0.06 * (i % 4),
            f"{fault.kind} {scope}".strip(),
            transform=ax.get_xaxis_transform(),
            ha="center",
            va="top",
            fontsize=7,
        )


def _finish(
    fig: Any,
    ax: Axes,
    run: Run,
    title: str,
    ylabel: str,
    legend: Literal["upper left", "lower left"],
    path: Path,
) -> None:
    """What every plot shares: the fault windows, the axes' words, the file."""
    _shade_faults(ax, run)
    ax.set_xlabel("simulated minutes")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(loc=legend, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(run: Run, summary: dict[str, Any], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    size = _bucket_s(run)
    name = run.scenario.name

    fig, ax = plt.subplots(figsize=(10, 4))
    x, y, oracle, naive = _success_series(run, verdicts(run), size)
    ax.plot(x, y, color=COLOURS[0], linewidth=2, label=f"paymend ({run.policy})")
    ax.plot(x, naive, color=COLOURS[1], label="naive checkout (same draws)")
    # on top, dotted: where paymend reaches the best possible, both lines show
    ax.plot(x, oracle, color="black", linestyle=":", label="oracle (best possible)")
    ax.set_ylim(0, 1.05)
    _finish(
        fig,
        ax,
        run,
        f"{name}: success over time",
        f"payments that succeeded (per {size:g} s of arrivals)",
        "lower left",
        folder / "success.png",
    )

    fig, ax = plt.subplots(figsize=(10, 4))
    counts: dict[str, dict[int, int]] = {ch: defaultdict(int) for ch in run.providers}
    for ch, provider in run.providers.items():
        for call in provider.calls:
            counts[ch][int(call.t // size)] += 1
    buckets = sorted({b for c in counts.values() for b in c})
    xs = [(b + 0.5) * size / 60 for b in buckets]
    stacks = [[counts[ch][b] / size for b in buckets] for ch in run.providers]
    ax.stackplot(xs, stacks, labels=list(run.providers), colors=COLOURS[: len(stacks)], alpha=0.8)
    _finish(
        fig,
        ax,
        run,
        f"{name}: where the calls went",
        "provider calls per second",
        "upper left",
        folder / "traffic.png",
    )

    fig, ax = plt.subplots(figsize=(10, 4))
    lat: dict[int, list[float]] = defaultdict(list)
    for a in run.arrivals:
        if a.latency_s is not None:
            lat[int(a.t // size)].append(a.latency_s * 1000)
    keys = sorted(lat)
    p50 = [percentile(lat[k], 0.5) for k in keys]
    p99 = [percentile(lat[k], 0.99) for k in keys]
    lx = [(k + 0.5) * size / 60 for k in keys]
    ax.plot(lx, p50, color=COLOURS[0], label="p50")
    ax.plot(lx, p99, color=COLOURS[3], label="p99")
    ax.axhline(CHECKOUT_DEADLINE_S * 1000, color="black", linestyle=":", label="checkout deadline")
    _finish(
        fig,
        ax,
        run,
        f"{name}: how long the checkout waited",
        "checkout latency (ms)",
        "upper left",
        folder / "latency.png",
    )

    lines = [
        f"# Lab run: {name}",
        "",
        f"Seed {run.scenario.seed}, {run.scenario.duration / 60:g} simulated minutes at "
        f"{run.scenario.rate:g} payments/s, policy `{run.policy}`.",
        "",
        "| figure | value |",
        "|---|---|",
        *[f"| {k} | {summary.get(k)} |" for k in HEADLINE],
        *[f"| {k} | {summary[k]} |" for k in NOTICE_FIGURES if k in summary],
        *[f"| {k} | {summary[k]} |" for k in FRAUD_FIGURES if k in summary],
        *[f"| {k} | {summary[k]} |" for k in JOURNEY_FIGURES if k in summary],
        "",
        "## Faults",
        "",
        "| kind | scope | from | for | attempts into it | technical failures"
        " | regret (by cause) | detect_s | recover_s | diagnosis (first) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for f in summary["faults"]:
        scope = ", ".join(f"{k}={v}" for k, v in f["scope"].items() if v) or "all"
        lines.append(
            f"| {f['kind']} | {scope} | {f['at_s'] / 60:g} min | {f['for_s'] / 60:g} min | "
            f"{f['attempts_into_fault']} | {f['customer_failures']} | "
            f"{f['regret']}{_causes(f['regret_by_cause'])} | {f['detect_s']} | "
            f"{f['recover_s']} | {_diagnosed(f)} |"
        )
    lines += [
        "",
        "## Regret",
        "",
        f"{summary['regret']} payments the oracle could have saved ended otherwise"
        f"{_causes(summary['regret_by_cause'])}; outside every fault: "
        f"{sum(summary['regret_outside_faults'].values())}"
        f"{_causes(summary['regret_outside_faults'])}. See docs/lab.md for the causes.",
        "",
        "## Customer messages",
        "",
        *[f"- `{code}`: {count}" for code, count in summary["messages"].items()],
        "",
        "## Success over time",
        "",
        "![success over time](success.png)",
        "",
        "## Where the calls went",
        "",
        "![traffic per channel](traffic.png)",
        "",
        "## Checkout latency",
        "",
        "![checkout latency](latency.png)",
        "",
    ]
    path = folder / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _diagnosed(fault: dict[str, Any]) -> str:
    """The incident's first suspect, marked right or wrong against the fault's scope."""
    if fault.get("diagnosis_correct") is None:
        return "—"
    first = (fault.get("diagnosis") or [{}])[0]
    where = ", ".join(f"{k}={v}" for k, v in (first.get("scope") or {}).items()) or "none"
    symptom = f" ({first['symptom']})" if first.get("symptom") else ""
    return f"{where}{symptom} {'✓' if fault['diagnosis_correct'] else '✗'}"


def _causes(counts: dict[str, int]) -> str:
    return " (" + ", ".join(f"{c} {n}" for c, n in counts.items()) + ")" if counts else ""
