"""`paymend lab run` and `lab compare`: scenarios replayed in simulated time."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Any

import click

from paymend.cli.base import main
from paymend.datafiles import DataFileError
from paymend.observability import configure_logging


@main.group()
def lab() -> None:
    """Replay outages and fraud waves in simulated time, against an oracle."""


def _lab_run(
    path: Path, policy: str, report: Path | None = None, *, progress: bool = True
) -> dict[str, Any]:
    """Run one scenario (the oracle and the naive checkout are replayed from its draws),
    with a progress bar on a terminal."""
    import time

    from paymend.lab.arrivals import arrivals
    from paymend.lab.metrics import summarize
    from paymend.lab.progress import ProgressBar
    from paymend.lab.runner import run as run_lab
    from paymend.lab.scenario import load_scenario

    try:
        scenario = load_scenario(path)
    except DataFileError as exc:
        raise click.ClickException(str(exc)) from None
    configure_logging("CRITICAL", stream=sys.stderr)  # the lab's own figures say it all
    started = time.perf_counter()
    bar = ProgressBar(len(arrivals(scenario)), scenario.name, sys.stderr, enabled=progress)
    # a run stopped by `kill` unwinds like Ctrl-C, so its temporary folder is removed too
    before = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        result = run_lab(scenario, policy, progress=bar if bar.enabled else None)
    finally:
        signal.signal(signal.SIGTERM, before)
        bar.close()
    summary = summarize(result)
    summary["wall_s"] = round(time.perf_counter() - started, 2)  # the run, oracle, naive
    if report is not None:
        from paymend.lab.report import write_report

        write_report(result, summary, report)
        summary["wall_s"] = round(time.perf_counter() - started, 2)  # and the report
    return summary


def _exit_on_sigterm(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


@lab.command("run")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--policy",
    type=click.Choice(["default", "naive"]),
    default="default",
    show_default=True,
    help="naive: run the engine as a checkout without paymend (one call, no retry); "
    "the default run already replays that checkout from the same draws.",
)
@click.option("--json", "as_json", is_flag=True, help="Print every figure as one JSON object.")
@click.option(
    "--report",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write report.md and plots (success, traffic, latency over time) into this folder.",
)
def lab_run(path: Path, policy: str, as_json: bool, report: Path | None) -> None:
    """Run the scenario in PATH through the real engine, against the oracle and the naive
    checkout (both replayed from the run's own draws)."""
    import json

    summary = _lab_run(path, policy, report, progress=not as_json)
    if as_json:
        click.echo(json.dumps(summary, ensure_ascii=False))
        return
    from paymend.lab.metrics import HEADLINE

    for key in HEADLINE:
        click.echo(f"{key:>22}: {summary[key]}")
    for fault in summary["faults"]:
        scope = ", ".join(f"{k}={v}" for k, v in fault["scope"].items() if v) or "all"
        click.echo(
            f"  fault {fault['kind']} [{scope}] at {fault['at_s']:g}s for {fault['for_s']:g}s: "
            f"{fault['attempts_into_fault']} attempts into it, "
            f"{fault['customer_failures']} customers failed for technical reasons, "
            f"regret {fault['regret']} {fault['regret_by_cause'] or ''}"
        )
    click.echo(f"  regret by cause: {summary['regret_by_cause'] or 'none'}")


@lab.command("compare")
@click.argument(
    "paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
def lab_compare(paths: tuple[Path, ...]) -> None:
    """One table of the headline figures for several scenarios."""
    from paymend.lab.metrics import HEADLINE

    cols = ("scenario", *HEADLINE)
    summaries = [_lab_run(path, "default") for path in paths]
    rows = [[str(summary.get(c)) for c in cols] for summary in summaries]
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    click.echo(" | ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)))
    click.echo("-|-".join("-" * w for w in widths))
    for r in rows:
        click.echo(" | ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))
    click.echo("\nregret (payments the oracle could save and paymend did not), by cause:")
    for summary in summaries:
        click.echo(f"  {summary['scenario']}: {summary['regret']} {_causes(summary)}")
        for fault in summary["faults"]:
            scope = ", ".join(f"{k}={v}" for k, v in fault["scope"].items() if v) or "all"
            click.echo(
                f"    {fault['kind']} [{scope}] at {fault['at_s']:g}s: {fault['regret']} "
                f"{_causes(fault)}; {fault['attempts_into_fault']} attempts into it, "
                f"customer failures {fault['customer_failures']} avoidable / "
                f"{fault['customer_failures_unavoidable']} unavoidable, "
                f"detect_s {fault['detect_s']}, recover_s {fault['recover_s']}, "
                f"diagnosis {_first_suspect(fault)}"
            )
        if summary["regret_outside_faults"]:
            outside = summary["regret_outside_faults"]
            click.echo(f"    outside every fault: {sum(outside.values())} {outside}")


def _first_suspect(fault: dict[str, Any]) -> str:
    if fault["diagnosis_correct"] is None:
        return "-"
    first = (fault["diagnosis"] or [{}])[0]
    where = ", ".join(f"{k}={v}" for k, v in (first.get("scope") or {}).items()) or "none"
    return f"{where} ({first.get('symptom')}) {'right' if fault['diagnosis_correct'] else 'wrong'}"


def _causes(figures: dict[str, Any]) -> str:
    causes = figures["regret_by_cause"]
    return "(" + ", ".join(f"{c} {n}" for c, n in causes.items()) + ")" if causes else ""
