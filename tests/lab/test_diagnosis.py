"""An incident's diagnosis explains its own fault, not another one open beside it.

CMB's switch times out on sim_b for a minute; as that fault ends, sim_a fails half its
calls in CN-North. The CN-North incident opens while CMB's is still open and its
timeouts still land: they are CMB's incident's to explain, and the CN-North diagnosis
names {channel: sim_a, region: CN-North} without them."""

from __future__ import annotations

from typing import Any

import pytest

from paymend.lab.metrics import summarize
from paymend.lab.runner import run
from paymend.lab.scenario import load_scenario

SCENARIO = """\
name: two-faults
seed: 3
duration: 150s
rate: 30
methods: {card: 0.5, wechat_pay: 0.5}
regions: {CN-East: 0.6, CN-North: 0.4}
banks: {ICBC: 0.5, CMB: 0.5}
payers: {insufficient_funds: 0.03}
channels:
  sim_a: {methods: [card], latency_ms: {p50: 120, p99: 800}, technical_error_rate: 0.002,
          cost_bps: 60}
  sim_b: {methods: [card, wechat_pay], latency_ms: {p50: 200, p99: 1200},
          technical_error_rate: 0.004, cost_bps: 80}
routing: [sim_a, sim_b]
faults:
  - {at: 30s, for: 60s, channel: sim_b, bank: CMB, kind: timeout, rate: 0.8, charged: 0.3}
  - {at: 90s, for: 30s, channel: sim_a, region: CN-North, kind: error, code: SYSTEM_ERROR,
     rate: 0.5}
"""


@pytest.fixture(scope="module")
def faults(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    path = tmp_path_factory.mktemp("lab") / "two.yaml"
    path.write_text(SCENARIO)
    scenario = load_scenario(path)
    figures = summarize(run(scenario, "default", tmp_path_factory.mktemp("runs")))
    found: list[dict[str, Any]] = figures["faults"]
    return found


def test_each_fault_is_named_by_its_own_incident(faults: list[dict[str, Any]]) -> None:
    cmb, north = faults
    assert cmb["diagnosis_correct"] is True
    assert north["diagnosis_correct"] is True
    assert north["diagnosis"][0]["scope"] == {"channel": "sim_a", "region": "CN-North"}


def test_the_other_faults_failures_are_not_in_the_diagnosis(faults: list[dict[str, Any]]) -> None:
    north = faults[1]
    named = [d["scope"] for d in north["diagnosis"]]
    assert not any(s.get("bank") == "CMB" or s.get("channel") == "sim_b" for s in named)
    assert all(d["symptom"] != "provider_timeout" for d in north["diagnosis"])
