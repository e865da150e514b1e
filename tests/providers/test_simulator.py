"""The simulator behaves like a provider where paymend's safety depends on it."""

from __future__ import annotations

import asyncio

import pytest

from paymend.domain.money import Money
from paymend.engine.clock import LoopClock
from paymend.engine.virtual_time import run_virtual
from paymend.providers.base import (
    ChargeRequest,
    ProviderConnectionError,
    ProviderOutcome,
    QueryRequest,
    RefundRequest,
)
from tests.helpers import simulator


def charge(key: str, token: str | None = None, amount: int = 1000) -> ChargeRequest:
    return ChargeRequest(key, f"pay_{key}", Money(amount, "CNY"), "card", token)


def test_same_seed_same_behaviour() -> None:
    async def outcomes() -> list[str | None]:
        sim = simulator(success_rate=0.6, declines={"INSUFFICIENT_FUNDS": 1, "DO_NOT_HONOR": 1})
        return [(await sim.authorize(charge(f"k{i}"))).raw_code for i in range(200)]

    first, second = run_virtual(outcomes()), run_virtual(outcomes())
    assert first == second
    assert {"APPROVED", "INSUFFICIENT_FUNDS", "DO_NOT_HONOR"} == set(first)


def test_an_idempotent_resend_never_charges_twice() -> None:
    async def scenario() -> None:
        sim = simulator()
        a = await sim.authorize(charge("k1"))
        b = await sim.authorize(charge("k1"))
        assert a == b
        assert a.outcome is ProviderOutcome.SUCCEEDED
        assert len(sim.ledger.charged("pay_k1")) == 1

    run_virtual(scenario())


def test_timeout_that_charged_anyway_is_visible_to_a_query() -> None:
    async def scenario() -> None:
        clock = LoopClock()
        sim = simulator(clock=clock, hang_s=30)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(2):
                await sim.authorize(charge("k1", "sim_timeout_charged"))
        assert clock.monotonic() == pytest.approx(2.0)  # virtual time: no real wait
        assert sim.ledger.net_charged("pay_k1") == 1000
        answer = await sim.query(QueryRequest("k1", "pay_k1"))
        assert answer.outcome is ProviderOutcome.SUCCEEDED

    run_virtual(scenario())


def test_plain_timeout_is_not_found_on_query() -> None:
    async def scenario() -> None:
        sim = simulator(hang_s=30)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(1):
                await sim.authorize(charge("k1", "sim_timeout"))
        answer = await sim.query(QueryRequest("k1", "pay_k1"))
        assert answer.outcome is ProviderOutcome.NOT_FOUND
        assert sim.ledger.net_charged("pay_k1") == 0

    run_virtual(scenario())


def test_outage_refuses_before_sending_and_lost_response_after_charging() -> None:
    async def scenario() -> None:
        down = simulator(outage=True)
        with pytest.raises(ProviderConnectionError) as refused:
            await down.authorize(charge("k1"))
        assert refused.value.sent is False
        assert down.ledger.all_charges() == []

        flaky = simulator()
        with pytest.raises(ProviderConnectionError) as lost:
            await flaky.authorize(charge("k2", "sim_lost_response"))
        assert lost.value.sent is True
        assert flaky.ledger.net_charged("pay_k2") == 1000

    run_virtual(scenario())


def test_refunds_are_idempotent_and_bounded() -> None:
    async def scenario() -> None:
        sim = simulator()
        ref = (await sim.authorize(charge("k1", amount=1000))).reference
        assert ref is not None
        part = RefundRequest("r1", ref, Money(400, "CNY"))
        assert (await sim.refund(part)).outcome is ProviderOutcome.SUCCEEDED
        assert (await sim.refund(part)).outcome is ProviderOutcome.SUCCEEDED  # replay
        assert sim.ledger.net_charged("pay_k1") == 600
        too_much = await sim.refund(RefundRequest("r2", ref, Money(700, "CNY")))
        assert too_much.outcome is ProviderOutcome.DECLINED
        assert too_much.raw_code == "REFUND_AMOUNT_EXCEEDED"

    run_virtual(scenario())


def test_latency_follows_the_configured_distribution() -> None:
    async def scenario() -> list[float]:
        clock = LoopClock()
        sim = simulator(clock=clock, latency_p50_ms=100, latency_p99_ms=800)
        out = []
        for i in range(400):
            start = clock.monotonic()
            await sim.authorize(charge(f"k{i}"))
            out.append(clock.monotonic() - start)
        return sorted(out)

    latencies = run_virtual(scenario())
    assert 0.07 < latencies[200] < 0.14  # median near 100 ms
    assert 0.4 < latencies[396] < 1.6  # 99th percentile near 800 ms
