"""A timeout counts against its channel at once, and for its bank and region once a
status query has told what it was: a timeout that charged anyway is a success, for a
bank whose switch answers late but charges is not a bank that is down."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from paymend.domain.payment import AttemptStatus, PaymentStatus
from paymend.engine.clock import LoopClock
from paymend.engine.virtual_time import run_virtual
from paymend.engine.worker import Worker
from paymend.store.database import Store
from tests.engine.test_pay import pay_cmd
from tests.helpers import make_merchant, service, simulator

BANK = "*|bank=CMB"


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url, inline=True)
    yield s
    s.close()


def test_a_timeout_the_worker_finds_charged_counts_as_a_success(store: Store) -> None:
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock = LoopClock()
        sim = simulator(clock=clock, hang_s=60)
        svc = service(store, {"sim_a": sim}, clock, timeout_s=3, deadline_s=3)
        cmd = replace(pay_cmd(mid, "sim_timeout_charged"), bank="CMB", region="CN-East")
        view = await svc.pay(cmd)
        assert view.payment.status is PaymentStatus.PROCESSING  # no time left to ask
        (attempt,) = view.attempts
        assert attempt.status is AttemptStatus.UNKNOWN and attempt.finished_at == clock.now()
        counted = svc.health.stats("sim_a|bank=CMB", clock.now().timestamp())
        assert counted is not None and (counted.success, counted.unknown) == (0, 1)
        assert svc.health.stats(BANK, clock.now().timestamp()) is None  # not yet known
        await clock.sleep(2)
        await Worker(svc).drain()
        final = await svc.get(view.payment.id)
        assert final.payment.status is PaymentStatus.SUCCEEDED
        now = clock.now().timestamp()
        for key in (BANK, "*|region=CN-East", "sim_a", "sim_a|bank=CMB"):
            settled = svc.health.stats(key, now)
            assert settled is not None and (settled.success, settled.unknown) == (1, 0), key
        history = svc.health.history("sim_a|bank=CMB", now, last_s=60)
        assert history is not None and (history.success, history.unknown) == (1, 0)

    run_virtual(scenario())


def test_a_timeout_the_checkout_finds_charged_counts_as_a_success(store: Store) -> None:
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock = LoopClock()
        sim = simulator(clock=clock, hang_s=60)
        svc = service(store, {"sim_a": sim}, clock, timeout_s=1, deadline_s=10)
        view = await svc.pay(replace(pay_cmd(mid, "sim_timeout_charged"), bank="CMB"))
        assert view.payment.status is PaymentStatus.SUCCEEDED  # asked at once, in time
        counted = svc.health.stats(BANK, clock.now().timestamp())
        assert counted is not None and (counted.success, counted.unknown) == (1, 0)

    run_virtual(scenario())


def test_a_timeout_found_not_charged_is_a_failure_of_its_bank(store: Store) -> None:
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock = LoopClock()
        sim = simulator(clock=clock, hang_s=60, timeout_rate=1.0)
        svc = service(store, {"sim_a": sim}, clock, timeout_s=1, deadline_s=1.02)
        view = await svc.pay(replace(pay_cmd(mid), bank="CMB"))
        assert [a.status for a in view.attempts] == [AttemptStatus.UNKNOWN]
        assert svc.health.stats(BANK, clock.now().timestamp()) is None  # not yet known
        sim.settings.timeout_rate = 0.0  # the switch answers the status query
        await clock.sleep(2)
        await Worker(svc).drain()
        counted = svc.health.stats(BANK, clock.now().timestamp())
        assert counted is not None and counted.unknown == 1  # then its retry succeeded
        final = await svc.get(view.payment.id)
        assert [a.status for a in final.attempts] == [
            AttemptStatus.FAILED,
            AttemptStatus.SUCCEEDED,
        ]

    run_virtual(scenario())
