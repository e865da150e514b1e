"""One channel per method and an outage of one of them: nothing to fail over to, so
paymend's payments wait for the channel (engine/waiting.py) instead of failing, and are
called once it is back, within `settle_within_s`, as the oracle's are."""

from __future__ import annotations

from typing import Any

import pytest

from paymend.lab.metrics import summarize
from paymend.lab.runner import run
from paymend.lab.scenario import load_scenario

SCENARIO = """\
name: one-channel-outage
seed: 5
duration: 3m
rate: 3
methods: {alipay: 0.6, wechat_pay: 0.4}
regions: {CN-East: 0.6, CN-North: 0.4}
banks: {ICBC: 0.5, CMB: 0.5}
payers: {insufficient_funds: 0.05, needs_authentication: 0.05}
channels:
  alipay_cn: {methods: [alipay], latency_ms: {p50: 120, p99: 800},
              technical_error_rate: 0.002, cost_bps: 60}
  wechatpay_cn: {methods: [wechat_pay], latency_ms: {p50: 200, p99: 1200},
                 technical_error_rate: 0.004, cost_bps: 80}
routing: [alipay_cn, wechatpay_cn]
faults:
  - {at: 30s, for: 60s, channel: alipay_cn, kind: outage}
"""


@pytest.fixture(scope="module")
def figures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("lab") / "one-channel.yaml"
    path.write_text(SCENARIO)
    return summarize(run(load_scenario(path), "default", tmp_path_factory.mktemp("runs")))


def test_payments_wait_out_their_only_channels_outage(figures: dict[str, Any]) -> None:
    # a minute's outage of Alipay's only channel: its payments that arrive meanwhile
    # (about a hundred) are called once it is back; failing them (or spending their
    # retries on the dead channel) left a regret of 90 and 0.78 success before
    (outage,) = figures["faults"]
    assert outage["attempts_into_fault"] < 40  # the dead channel saw only the first calls
    assert outage["regret"] <= 15  # those first calls, before its circuit opened
    assert figures["recovery_ratio"] >= 0.97
    assert figures["success_rate"] >= figures["naive_success_rate"] + 0.1
    assert figures["regret_outside_faults"] == {}
    assert "paused" not in figures["regret_by_cause"]
    assert "held_for_channel" not in figures["regret_by_cause"]  # all let through in time


def test_waiting_costs_no_money(figures: dict[str, Any]) -> None:
    assert figures["payments"] > 400
    assert figures["duplicate_charges"] == 0
    assert figures["charged_but_failed"] == 0
    assert figures["lost_payments"] == 0
    assert figures["unknown_unresolved"] == 0
    assert figures["processing_at_end"] == 0  # nothing left waiting
    assert figures["oracle_violations"] == 0
