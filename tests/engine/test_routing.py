"""Routing in the engine: health-aware ranking per payment, circuits per scope, and the
probes that keep a tripped backup from being shut out for good."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from paymend.engine.clock import LoopClock
from paymend.engine.virtual_time import run_virtual
from paymend.health.outcomes import Outcome
from paymend.store.database import Store
from tests.engine.test_playbooks import command
from tests.helpers import make_merchant, service, simulator


@pytest.fixture
def store(sqlite_url: str) -> Iterator[Store]:
    s = Store(sqlite_url, inline=True)
    yield s
    s.close()


def test_a_backup_nobody_prefers_is_still_probed_when_its_circuit_cools(store: Store) -> None:
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock = LoopClock()
        a = simulator(clock=clock, error_rate=1.0)
        b = simulator("sim_b", clock=clock)
        svc = service(store, {"sim_a": a, "sim_b": b}, clock, routing=("sim_a", "sim_b"))
        svc.health.force_open("sim_b", svc._health_now(), "an earlier fault")
        early = await svc.pay(command(mid, 1))  # the backup's circuit is still cooling down
        assert [x.provider for x in early.attempts] == ["sim_a", "sim_a"]
        assert early.payment.status.value == "failed"
        await clock.sleep(15)
        view = await svc.pay(command(mid, 2))
        assert [x.provider for x in view.attempts] == ["sim_b"]  # the probe goes first
        assert "probing sim_b" in (view.attempts[0].reason or "")
        assert view.payment.status.value == "succeeded"
        assert svc.health.state("sim_b").value == "half_open"  # one probe passed, more to go
        for i in range(3, 6):
            await svc.pay(command(mid, i))
        assert svc.health.state("sim_b").value == "closed"

    run_virtual(scenario())


def test_a_bank_failing_on_the_primary_moves_only_that_banks_payments(store: Store) -> None:
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock = LoopClock()
        a, b = simulator(clock=clock), simulator("sim_b", clock=clock)
        svc = service(store, {"sim_a": a, "sim_b": b}, clock, routing=("sim_a", "sim_b"))
        now = svc._health_now()
        for i in range(2000):  # both healthy, with plenty of evidence
            svc.health.record(["sim_a", "sim_a|bank=ICBC"], now + i * 0.001, Outcome.SUCCESS, 1)
            svc.health.record(["sim_b"], now + i * 0.001, Outcome.SUCCESS, 1)
        for i in range(30):  # CMB on sim_a: 2 in 3 calls fail, not in a row of five
            failed = Outcome.TECHNICAL if i % 3 else Outcome.SUCCESS
            svc.health.record(["sim_a", "sim_a|bank=CMB"], now + 2 + i * 0.1, failed, 5)
        cmb = await svc.pay(command(mid, 1, bank="CMB"))
        icbc = await svc.pay(command(mid, 2, bank="ICBC"))
        assert [x.provider for x in cmb.attempts] == ["sim_b"]
        assert "sim_a" in (cmb.attempts[0].reason or "")
        assert "bank=CMB" in (cmb.attempts[0].reason or "")  # its circuit or its estimate
        assert [x.provider for x in icbc.attempts] == ["sim_a"]

    run_virtual(scenario())


@pytest.mark.parametrize(
    ("tripped", "primary_sick", "early"),
    [
        ("sim_b|bank=CMB", True, True),
        ("sim_b|bank=CMB", False, False),  # a blip on a healthy primary: retried there
        ("sim_b", True, False),  # a backup down as a whole keeps its probe schedule
    ],
)
def test_a_payment_with_nowhere_else_to_go_probes_a_cooling_backup_early(
    store: Store, tripped: str, primary_sick: bool, early: bool
) -> None:
    """The backup's circuit for CMB failed a probe and waits 20 s; the primary fails this
    CMB customer. When the primary is failing half its calls, the backup, fixed
    meanwhile, takes the payment as an early probe instead of a second doomed try on
    the primary. Not when the primary is healthy (a blip), nor when the backup's whole
    channel is down."""
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock = LoopClock()
        a = simulator(clock=clock, error_rate=1.0)
        b = simulator("sim_b", clock=clock, error_rate=1.0)
        svc = service(store, {"sim_a": a, "sim_b": b}, clock, routing=("sim_a", "sim_b"))
        svc.health.force_open(tripped, svc._health_now(), "an earlier fault")
        await clock.sleep(10.5)
        probed = await svc.pay(command(mid, 1, bank="CMB"))  # the scheduled probe: it fails
        assert probed.attempts[0].provider == "sim_b"
        assert svc.health.state(tripped).value == "open"  # for 20 s now
        b.settings = dataclasses.replace(b.settings, error_rate=0.0)
        await clock.sleep(11)
        now = svc._health_now()
        for i in range(12):  # the primary's last 10 s: half failed, or all fine
            failed = primary_sick and i % 2 == 0
            verdict = Outcome.TECHNICAL if failed else Outcome.SUCCESS
            svc.health.record(["sim_a"], now - 6 + i * 0.5, verdict, 50)
        view = await svc.pay(command(mid, 2, bank="CMB"))
        if early:
            assert [x.provider for x in view.attempts] == ["sim_a", "sim_b"]
            assert view.payment.status.value == "succeeded"
            assert svc.health.state(tripped).value == "half_open"  # the early probe counted
        else:
            assert [x.provider for x in view.attempts] == ["sim_a", "sim_a"]
            assert svc.health.state(tripped).value == "open"

    run_virtual(scenario())
