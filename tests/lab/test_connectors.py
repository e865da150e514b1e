"""A scenario whose channels are paymend's real Alipay and WeChat Pay connectors, talking
in-process to the simulator's protocol faces on the virtual-time loop: the connectors'
wire code runs, and the lab's figures and invariants hold as on simulator channels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from paymend.datafiles import DataFileError
from paymend.lab.metrics import summarize
from paymend.lab.runner import Run, run
from paymend.lab.scenario import load_scenario

SCENARIO = """\
name: connectors-short
seed: 3
duration: 2m
rate: 3
methods: {alipay: 0.6, wechat_pay: 0.4}
regions: {CN-East: 0.6, CN-North: 0.4}
banks: {ICBC: 0.5, CMB: 0.5}
payers: {insufficient_funds: 0.05, needs_authentication: 0.05, fraud: 0.01}
channels:
  alipay_cn: {type: alipay, methods: [alipay], latency_ms: {p50: 120, p99: 800},
              technical_error_rate: 0.01, cost_bps: 60}
  wechatpay_cn: {type: wechatpay, methods: [wechat_pay], latency_ms: {p50: 200, p99: 1200},
                 technical_error_rate: 0.02, cost_bps: 80}
routing: [alipay_cn, wechatpay_cn]
faults:
  - {at: 20s, for: 30s, channel: alipay_cn, kind: outage}
  - {at: 60s, for: 30s, channel: wechatpay_cn, bank: CMB, kind: timeout, rate: 0.9, charged: 0.5}
"""


@pytest.fixture(scope="module")
def connectors_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    path = tmp_path_factory.mktemp("lab") / "connectors.yaml"
    path.write_text(SCENARIO)
    return run(load_scenario(path), "default", tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="module")
def figures(connectors_run: Run) -> dict[str, Any]:
    return summarize(connectors_run)


def test_the_connectors_wire_code_ran(connectors_run: Run) -> None:
    for name, kind in (("alipay_cn", "alipay"), ("wechatpay_cn", "wechatpay")):
        connector = connectors_run.connectors[name]
        assert type(connector.provider).__module__.startswith(f"paymend.providers.{kind}.")
        # every request the face read carried a signature it verified: no refusal of
        # one would let a payment through, and payments went through on both
        assert connector.signed_requests() > 20
        assert connector.wire.requests >= connector.signed_requests()
    calls = connectors_run.connectors["alipay_cn"].face.calls
    assert "alipay.trade.pay" in calls
    assert "alipay.trade.query" in calls  # the outage's unknowns and wallets still paying


def test_the_invariants_hold_through_the_connectors(figures: dict[str, Any]) -> None:
    assert figures["payments"] > 300
    assert figures["duplicate_charges"] == 0
    assert figures["charged_but_failed"] == 0
    assert figures["lost_payments"] == 0
    assert figures["unknown_unresolved"] == 0
    assert figures["processing_at_end"] == 0
    assert figures["oracle_violations"] == 0
    assert figures["recovery_ratio"] <= 1.0
    assert figures["success_rate"] > 0.7
    assert sum(figures["regret_by_cause"].values()) == figures["regret"]


def test_the_payers_truth_reaches_the_connector_as_the_providers_codes(
    connectors_run: Run,
) -> None:
    # the face answers ACQ.BUYER_BALANCE_NOT_ENOUGH / NOT_ENOUGH, each connector's code map
    # gives back the unified failure
    seen = {(a.provider, a.unified_code) for _, a in connectors_run.records.all_attempts()}
    assert ("alipay_cn", "insufficient_funds") in seen


def test_a_connector_channel_takes_only_its_providers_methods(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(SCENARIO.replace("methods: [wechat_pay]", "methods: [wechat_pay, card]"))
    with pytest.raises(DataFileError, match="takes only wechat_pay"):
        load_scenario(path)


def test_the_connectors_answer_as_the_simulator_channels_do(
    connectors_run: Run, figures: dict[str, Any], tmp_path: Path
) -> None:
    """The same scenario on simulator channels: the faces take every fate from the same
    draws, so each payment ends the same way, through the wire code or not."""
    path = tmp_path / "simulated.yaml"
    path.write_text(SCENARIO.replace("type: alipay, ", "").replace("type: wechatpay, ", ""))
    simulated = run(load_scenario(path), "default", tmp_path)
    # (at checkout a wallet asking for the password is `processing`, where the simulator's
    # 3-D Secure is `requires_action`; both end the same)
    assert _ends(simulated) == _ends(connectors_run)
    again = summarize(simulated)
    for figure in ("success_rate", "oracle_success_rate", "naive_success_rate", "regret"):
        assert again[figure] == figures[figure]


def _ends(ran: Run) -> list[str]:
    return [ran.records.payments[a.payment_id or ""].status for a in ran.arrivals]
