"""`paymend risk backtest` replays stored payments through a candidate rules version,
beside the live decisions; `paymend risk check` refuses a bad file with its line."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from paymend.cli import main
from paymend.domain.money import Money
from paymend.domain.payment import Customer, PaymentStatus
from paymend.engine import risk_ops
from paymend.engine.clock import LoopClock
from paymend.engine.commands import PayCommand
from paymend.engine.risk_gate import RiskGate
from paymend.engine.virtual_time import run_virtual
from paymend.risk.rules import load
from paymend.store.database import Store
from tests.helpers import make_merchant, service, simulator

LIVE = 'version: "live-1"\nrules:\n  - {name: huge, action: block, when: amount_major > 5000}\n'
CANDIDATE = """\
version: "next-2"
rules:
  - name: big
    action: review
    when: amount_major > 100
  - name: shared_device
    action: block
    when: device_id == "dev-shared"
"""


def test_a_backtest_counts_what_each_rule_would_have_done(db_url: str, tmp_path: Path) -> None:
    store = Store(db_url, inline=True)
    mid, _ = make_merchant(store)

    async def history() -> None:
        clock = LoopClock()
        sim = simulator(clock=clock)
        svc = service(store, {"sim_a": sim}, clock)
        svc.risk = RiskGate(store, clock, load(Path("live.yaml"), LIVE))
        amounts = [500, 20_000, 30_000, 900_000, 700]  # 5, 200, 300, 9000, 7 CNY
        views = []
        for i, amount in enumerate(amounts):
            device = "dev-shared" if i in (1, 4) else f"dev-{i}"
            views.append(
                await svc.pay(
                    PayCommand(
                        merchant_id=mid,
                        order_id=f"o{i}",
                        amount=Money(amount, "CNY"),
                        method="card",
                        token="sim_approve",
                        customer=Customer(f"c{i}"),
                        metadata={"device_id": device},
                    )
                )
            )
            await clock.sleep(60)
        assert [v.payment.status for v in views].count(PaymentStatus.SUCCEEDED) == 4
        await risk_ops.report(svc, views[2].payment.id, mid, "chargeback", "disputed")

    run_virtual(history())
    store.close()
    path = tmp_path / "candidate.yaml"
    path.write_text(CANDIDATE, encoding="utf-8")
    runner = CliRunner()
    env = {"PAYMEND_DATABASE_URL": db_url}
    result = runner.invoke(main, ["risk", "backtest", str(path), "--json"], env=env)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert report["payments"] == 5
    assert report["live"] == {"allow": 4, "block": 1}
    assert report["candidate"] == {"allow": 1, "review": 2, "block": 2}
    assert report["changed"] == 4
    big = report["rules"]["big"]
    # matched 200, 300, 9000 CNY: two succeeded live (one charged back), one blocked live
    assert big == {"action": "review", "matched": 3, "succeeded": 2, "reported": 1, "unknown": 1}
    assert report["rules"]["shared_device"]["matched"] == 2
    assert report["rules"]["shared_device"]["succeeded"] == 2

    later = runner.invoke(main, ["risk", "backtest", str(path), "--since", "2099-01-01"], env=env)
    assert later.exit_code == 0 and "0 stored payments replayed" in later.output


def test_risk_check_names_the_line_of_a_mistake(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(CANDIDATE.replace('device_id == "dev-shared"', "device_id > 3"), "utf-8")
    result = CliRunner().invoke(main, ["risk", "check", str(path)])
    assert result.exit_code == 1
    assert f"{path}:8:" in result.output and "shared_device" in result.output
    good = tmp_path / "good.yaml"
    good.write_text(CANDIDATE, "utf-8")
    ok = CliRunner().invoke(main, ["risk", "check", str(good)])
    assert ok.exit_code == 0 and "version next-2, 2 rules" in ok.output
