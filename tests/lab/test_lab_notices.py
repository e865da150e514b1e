"""A lab run that tells customers: the real notice planner and delivery, and the figures
(notices per payment, p99 delay from event to delivery) in the summary and the report."""

from __future__ import annotations

from pathlib import Path

from paymend.lab.metrics import summarize
from paymend.lab.report import write_report
from paymend.lab.runner import run
from paymend.lab.scenario import load_scenario
from tests.lab.test_runner import SCENARIO


def test_a_run_that_tells_customers_reports_its_notice_figures(tmp_path: Path) -> None:
    path = tmp_path / "small-notices.yaml"
    path.write_text(SCENARIO + "notices: true\n")
    done = run(load_scenario(path), "default", tmp_path)
    figures = summarize(done)
    # late outcomes (timeouts settled by the worker) are told, nothing else
    assert 0 < figures["notices_sent"] < figures["payments"] * 0.2
    assert figures["notices_per_payment"] == round(figures["notices_sent"] / figures["payments"], 4)
    # a failure notice waits its hold, then goes out within the 2 s the issue asks
    assert figures["p99_notice_delay_after_hold_s"] is not None
    assert 0 <= figures["p99_notice_delay_after_hold_s"] <= 2.0
    assert figures["p99_notice_delay_s"] >= figures["p99_notice_delay_after_hold_s"]
    report = write_report(done, figures, tmp_path / "report").read_text()
    assert f"| notices_per_payment | {figures['notices_per_payment']} |" in report
    print({k: v for k, v in figures.items() if "notice" in k})


def test_a_run_that_does_not_tell_customers_has_no_notice_figures(tmp_path: Path) -> None:
    path = tmp_path / "small.yaml"
    path.write_text(SCENARIO)
    figures = summarize(run(load_scenario(path), "default", tmp_path))
    assert not any("notice" in k for k in figures)
