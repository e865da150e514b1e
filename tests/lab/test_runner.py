"""The lab drives the real engine: same seed, same figures; money never goes astray."""

from __future__ import annotations

from pathlib import Path

import pytest

from paymend.lab.metrics import summarize
from paymend.lab.runner import run
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
    {methods: [card, alipay], latency_ms: {p50: 200, p99: 1200}, technical_error_rate: 0.01,
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
def figures(scenario_file: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:  # type: ignore[type-arg]
    scenario = load_scenario(scenario_file)
    work = tmp_path_factory.mktemp("runs")
    return summarize(run(scenario, "default", work), run(scenario, "naive", work))


def test_the_same_seed_gives_the_same_figures(
    scenario_file: Path, tmp_path: Path, figures: dict
) -> None:  # type: ignore[type-arg]
    scenario = load_scenario(scenario_file)
    again = summarize(run(scenario, "default", tmp_path), run(scenario, "naive", tmp_path))
    strip = lambda d: {k: v for k, v in d.items() if k != "wall_s"}  # noqa: E731
    assert strip(again) == strip(figures)


def test_no_money_goes_astray(figures: dict) -> None:  # type: ignore[type-arg]
    assert figures["payments"] > 500
    assert figures["duplicate_charges"] == 0
    assert figures["charged_but_failed"] == 0
    assert figures["lost_payments"] == 0
    assert figures["unknown_unresolved"] == 0
    assert figures["processing_at_end"] == 0


def test_paymend_beats_the_naive_checkout_and_reaches_the_oracle(figures: dict) -> None:  # type: ignore[type-arg]
    assert figures["naive_success_rate"] < figures["success_rate"]
    # the oracle counts a channel touched by any fault as lost; a partial fault (rate < 1,
    # a timeout that charged anyway) still lets some through, so the ratio may pass 1
    assert figures["recovery_ratio"] > 0.95
    assert figures["messages"]["insufficient_funds"] > 0  # the payer wave shows up as itself
    outage = figures["faults"][0]
    assert outage["kind"] == "outage" and outage["attempts_into_fault"] > 0


def test_the_naive_checkout_takes_money_it_reports_as_failed(
    scenario_file: Path, tmp_path: Path
) -> None:
    naive = summarize(run(load_scenario(scenario_file), "naive", tmp_path))
    assert naive["policy"] == "naive"
    assert naive["retries_per_payment"] == 0
    # timeouts that charged anyway, told "failed": what paymend exists to prevent
    assert naive["charged_but_failed"] > 0


def test_the_report_has_the_figures_and_three_plots(scenario_file: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from paymend.cli import main

    out = tmp_path / "report"
    result = CliRunner().invoke(main, ["lab", "run", str(scenario_file), "--report", str(out)])
    assert result.exit_code == 0, result.output
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
    assert outage["customer_failures"] == 0
    assert outage["diagnosis_correct"] is True
    assert outage["diagnosis"][0]["scope"] == {"channel": "sim_a"}
    # sim_a's CMB payments: a circuit of their own, unless routing already kept them away
    assert timeouts["detect_s"] is not None or timeouts["attempts_into_fault"] <= 10
    assert payers["detect_s"] is None and payers["diagnosis_correct"] is None
    assert figures["false_actions"] == len(figures["false_action_list"]) == 0
