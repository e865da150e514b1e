"""The lab drives the real engine: same seed, same figures; money never goes astray."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from paymend.lab import memory
from paymend.lab.metrics import summarize, verdicts
from paymend.lab.naive import NaiveCheckout
from paymend.lab.progress import ProgressBar
from paymend.lab.regret import CAUSES
from paymend.lab.runner import CHECKOUT_DEADLINE_S, run
from paymend.lab.scenario import load_scenario

SCENARIO = """\
name: small
seed: 5
duration: 90s
rate: 8
methods: {card: 0.7, alipay: 0.3}
regions: {CN-East: 0.6, CN-North: 0.4}
banks: {ICBC: 0.5, CMB: 0.5}
payers: {insufficient_funds: 0.05, needs_authentication: 0.05, fraud: 0.01}
channels:
  sim_a:
    {methods: [card, alipay], latency_ms: {p50: 120, p99: 800}, technical_error_rate: 0.01,
     cost_bps: 60}
  sim_b:
    {methods: [card, alipay], latency_ms: {p50: 200, p99: 1200}, technical_error_rate: 0.03,
     cost_bps: 80}
routing: [sim_a, sim_b]
faults:
  - {at: 20s, for: 20s, channel: sim_a, kind: outage}
  - {at: 50s, for: 20s, channel: sim_a, bank: CMB, kind: timeout, rate: 0.9, charged: 0.5}
  - {at: 60s, for: 10s, kind: payer, insufficient_funds: 0.4}
"""


@pytest.fixture(scope="module")
def scenario_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("lab") / "small.yaml"
    path.write_text(SCENARIO)
    return path


@pytest.fixture(scope="module")
def runs(scenario_file: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The scenario run once per policy, each in a temporary folder under `root`."""
    scenario = load_scenario(scenario_file)
    root = tmp_path_factory.mktemp("runs")
    return {
        "root": root,
        "default": run(scenario, "default", root),
        "naive": run(scenario, "naive", root),
    }


@pytest.fixture(scope="module")
def figures(runs: dict[str, Any]) -> dict[str, Any]:
    return summarize(runs["default"])


def test_the_same_seed_gives_the_same_figures(
    scenario_file: Path, tmp_path: Path, figures: dict[str, Any]
) -> None:
    scenario = load_scenario(scenario_file)
    again = summarize(run(scenario, "default", tmp_path))

    def strip(d: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in d.items() if k != "wall_s"}

    assert strip(again) == strip(figures)


def test_no_money_goes_astray(figures: dict) -> None:  # type: ignore[type-arg]
    assert figures["payments"] > 500
    assert figures["duplicate_charges"] == 0
    assert figures["charged_but_failed"] == 0
    assert figures["lost_payments"] == 0
    assert figures["unknown_unresolved"] == 0
    assert figures["processing_at_end"] == 0


def test_paymend_beats_the_naive_checkout_and_never_the_oracle(figures: dict) -> None:  # type: ignore[type-arg]
    assert figures["naive_success_rate"] < figures["success_rate"]
    assert figures["oracle_violations"] == 0  # no payment paymend saved that the oracle could not
    assert figures["success_rate"] <= figures["oracle_success_rate"]
    assert 0.95 < figures["recovery_ratio"] <= 1.0
    assert figures["regret"] == sum(figures["regret_by_cause"].values())
    assert figures["messages"]["insufficient_funds"] > 0  # the payer wave shows up as itself
    outage = figures["faults"][0]
    assert outage["kind"] == "outage" and outage["attempts_into_fault"] > 0


def test_the_naive_checkout_from_the_draws_is_what_a_one_call_checkout_gets(
    runs: dict[str, Any],
) -> None:
    """The engine run as a checkout without paymend (one call, no retry, no query) meets
    the same draws: payment by payment, the replay gives the same answer."""
    engine = runs["naive"]
    replay = NaiveCheckout(engine.scenario, CHECKOUT_DEADLINE_S)
    mismatched = []
    for a in engine.arrivals:
        record = engine.records.payments[a.payment_id or ""]
        tried = engine.records.attempts[a.payment_id or ""]
        expected = replay.outcome(a)
        if (record.status == "succeeded") != expected.succeeded or (
            tried[0].provider != expected.channel
        ):
            mismatched.append((a.n, record.status, expected))
    assert not mismatched, mismatched[:5]
    figures = summarize(engine)
    assert figures["naive_success_rate"] == figures["success_rate"]
    assert figures["retries_per_payment"] == 0
    # timeouts that charged anyway, told "failed": what paymend exists to prevent
    assert figures["charged_but_failed"] == figures["naive_charged_but_failed"] > 0


def test_the_report_has_the_figures_and_three_plots(scenario_file: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from paymend.cli import main

    out = tmp_path / "report"
    args = ["lab", "run", str(scenario_file), "--report", str(out), "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["scenario"] == "small"  # nothing but the JSON
    report = (out / "report.md").read_text()
    assert "# Lab run: small" in report and "| duplicate_charges | 0 |" in report
    assert "| channel=sim_a (provider_unavailable) ✓ |" in report  # the outage's diagnosis
    for name in ("success", "traffic", "latency"):
        png = out / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
        assert f"({name}.png)" in report


def test_faults_are_detected_and_diagnosed_by_the_real_incidents(figures: dict) -> None:  # type: ignore[type-arg]
    outage, timeouts, payers = figures["faults"]
    assert outage["detect_s"] is not None and outage["detect_s"] < 10  # at 8 payments/s
    # the few the oracle could have saved (sim_b erred, the failover met the outage and
    # paymend stopped before it ended) are regret, each with its cause
    assert outage["customer_failures"] <= outage["regret"] <= 5
    assert set(outage["regret_by_cause"]) <= set(CAUSES)
    assert outage["diagnosis_correct"] is True
    assert outage["diagnosis"][0]["scope"] == {"channel": "sim_a"}
    # sim_a's CMB payments: a circuit of their own, unless routing already kept them away
    assert timeouts["detect_s"] is not None or timeouts["attempts_into_fault"] <= 10
    assert payers["detect_s"] is None and payers["diagnosis_correct"] is None
    assert figures["false_actions"] == len(figures["false_action_list"]) == 0


def test_each_run_removes_its_database_even_when_it_fails(
    scenario_file: Path, tmp_path: Path, runs: dict[str, Any]
) -> None:
    assert list(runs["root"].iterdir()) == []  # two whole runs left nothing behind
    scenario = load_scenario(scenario_file)

    def interrupted(done: int, succeeded: int, simulated_s: float) -> None:
        if done == 100:
            raise KeyboardInterrupt  # as a person pressing Ctrl-C mid-run

    with pytest.raises(KeyboardInterrupt):
        run(scenario, "default", tmp_path, progress=interrupted)
    assert list(tmp_path.iterdir()) == []


def test_a_run_too_big_for_memory_runs_on_a_file_with_the_same_figures(
    scenario_file: Path, tmp_path: Path, runs: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past memdb's ceiling the run's database is its temporary folder's file instead:
    the same payments, attempts, playbooks and incidents, and nothing left behind."""
    monkeypatch.setattr(memory, "BYTES_PER_PAYMENT", 1 << 30)  # every run is too big now
    sizes: list[int] = []

    def watch(done: int, succeeded: int, simulated_s: float) -> None:
        if done % 200 == 0:  # the database file grows as the payments are written
            sizes.extend(f.stat().st_size for f in tmp_path.glob("paymend-lab-*/schema.db"))

    on_file = run(load_scenario(scenario_file), "default", tmp_path, progress=watch)
    assert len(sizes) >= 3 and sizes[-1] > sizes[0]
    assert on_file.records == runs["default"].records
    assert [(a.payment_id, a.status, a.latency_s) for a in on_file.arrivals] == [
        (a.payment_id, a.status, a.latency_s) for a in runs["default"].arrivals
    ]
    assert list(tmp_path.iterdir()) == []


def test_the_oracle_is_the_same_for_every_policy(runs: dict[str, Any]) -> None:
    """The oracle replays the draws, not the run: what paymend did changes nothing in it."""
    assert verdicts(runs["default"]) == verdicts(runs["naive"])


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_bar_shows_on_a_terminal_and_nowhere_else() -> None:
    quiet = io.StringIO()
    bar = ProgressBar(400, "small", quiet)
    for done in range(1, 401):
        bar(done, done - 1, done / 4)
    bar.close()
    assert not bar.enabled and quiet.getvalue() == ""

    screen = _Terminal()
    bar = ProgressBar(400, "small", screen, every_s=0)
    for done in range(1, 401):
        bar(done, done // 2, done / 4)
    bar.close()
    shown = screen.getvalue()
    assert bar.enabled and "small" in shown and "simulated 1:40, success 50.0%" in shown

    silenced = _Terminal()  # --json: nothing but the JSON, even on a terminal
    ProgressBar(400, "small", silenced, enabled=False)(1, 1, 0.2)
    assert silenced.getvalue() == ""


def test_lab_compare_tabulates_and_explains_the_regret(scenario_file: Path) -> None:
    from click.testing import CliRunner

    from paymend.cli import main

    result = CliRunner().invoke(main, ["lab", "compare", str(scenario_file)])
    assert result.exit_code == 0, result.output
    header, _, row = result.output.splitlines()[:3]
    assert "recovery_ratio" in header and "regret" in header and row.startswith("small ")
    assert "regret (payments the oracle could save and paymend did not)" in result.output
    assert "    outage [channel=sim_a] at 20s: " in result.output
