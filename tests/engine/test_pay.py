"""PaymentService: write before calling, record every attempt, never charge twice.

Runs on a virtual-time event loop with the store inline, so provider latencies and
timeouts cost no real time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
import sqlalchemy as sa

from paymend.domain.errors import Conflict, InvalidInput
from paymend.domain.ids import MerchantId
from paymend.domain.money import Money
from paymend.domain.payment import AttemptStatus, Customer, PaymentStatus, RefundStatus
from paymend.engine.budget import BudgetSettings, RetryBudget
from paymend.engine.clock import LoopClock
from paymend.engine.commands import PayCommand, RefundCommand
from paymend.engine.virtual_time import run_virtual
from paymend.engine.worker import Worker, WorkerSettings
from paymend.providers.base import ChargeRequest, ProviderResult
from paymend.providers.simulator import SimulatedProvider
from paymend.store import outbox
from paymend.store.database import Store
from paymend.store.tables import attempts, payments
from tests.helpers import count_rows, make_merchant, service, simulator


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url, inline=True)
    yield s
    s.close()


def pay_cmd(
    mid: MerchantId, token: str | None = None, amount: int = 5000, order: str = "o-1"
) -> PayCommand:
    return PayCommand(
        merchant_id=mid,
        order_id=order,
        amount=Money(amount, "CNY"),
        method="card",
        token=token,
        customer=Customer("c1", "zh-CN", "+8613812345678", "li@example.com"),
        trace_id="0af7651916cd43dd8448eb211c80319c",
    )


def test_a_successful_payment_is_recorded_with_its_attempt(store: Store) -> None:
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock = LoopClock()
        sim = simulator(clock=clock, latency_p50_ms=150, latency_p99_ms=150)
        view = await service(store, {"sim_a": sim}, clock).pay(pay_cmd(mid))
        assert view.payment.status is PaymentStatus.SUCCEEDED
        stored = await service(store, {"sim_a": sim}, clock).get(view.payment.id, mid)
        (attempt,) = stored.attempts
        assert attempt.status is AttemptStatus.SUCCEEDED
        assert attempt.raw_code == "APPROVED"
        assert attempt.latency_ms == 150
        assert attempt.trace_id == "0af7651916cd43dd8448eb211c80319c"
        assert attempt.provider_reference is not None
        assert attempt.request["customer"]["phone"] == "+86****5678"  # masked in the audit log
        assert sim.ledger.net_charged(view.payment.id) == 5000
        events = await store.run(lambda c: outbox.for_subject(c, view.payment.id))
        assert [e.type for e in events] == [
            "payment.created",
            "attempt.finished",
            "payment.succeeded",
        ]

    run_virtual(scenario())


def test_the_attempt_row_exists_before_the_provider_is_called(store: Store) -> None:
    mid, _ = make_merchant(store)
    seen: list[tuple[str, str]] = []

    class Watching(SimulatedProvider):
        async def authorize(self, request: ChargeRequest) -> ProviderResult:
            row = store.run_sync(
                lambda c: c.execute(
                    sa.select(attempts.c.status, payments.c.status)
                    .join(payments, payments.c.id == attempts.c.payment_id)
                    .where(attempts.c.payment_id == request.payment_id)
                ).one()
            )
            seen.append((row[0], row[1]))
            return await super().authorize(request)

    async def scenario() -> None:
        clock = LoopClock()
        sim = Watching("sim_a", simulator().settings, clock)
        await service(store, {"sim_a": sim}, clock).pay(pay_cmd(mid))

    run_virtual(scenario())
    assert seen == [("pending", "processing")]


def test_a_decline_fails_the_payment_with_its_unified_code(store: Store) -> None:
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock = LoopClock()
        sim = simulator(clock=clock)
        view = await service(store, {"sim_a": sim}, clock).pay(
            pay_cmd(mid, "sim_decline_insufficient_funds")
        )
        assert view.payment.status is PaymentStatus.FAILED
        assert view.payment.failure_code == "insufficient_funds"
        assert view.attempts[0].raw_code == "INSUFFICIENT_FUNDS"
        assert view.attempts[0].decision == "customer_action"
        assert sim.ledger.net_charged(view.payment.id) == 0

    run_virtual(scenario())


@pytest.mark.parametrize("token", ["sim_timeout", "sim_timeout_charged", "sim_lost_response"])
def test_past_the_deadline_an_unknown_outcome_is_left_to_the_worker(
    store: Store, token: str
) -> None:
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock = LoopClock()
        # answers (and resets) take the whole checkout budget: no time is left to ask
        sim = simulator(clock=clock, hang_s=60, latency_p50_ms=3000, latency_p99_ms=3000)
        svc = service(store, {"sim_a": sim}, clock, timeout_s=5, deadline_s=3)
        start = clock.monotonic()
        view = await svc.pay(pay_cmd(mid, token))
        assert clock.monotonic() - start <= 3.0 + 1e-6  # the checkout is answered in time
        assert view.payment.status is PaymentStatus.PROCESSING  # never "failed"
        assert view.attempts[0].status is AttemptStatus.UNKNOWN
        assert view.attempts[0].decision == "query_status"

        worker = Worker(svc)
        await clock.sleep(2)  # the first status query is due 2 s after the unknown outcome
        report = await worker.sweep()
        assert report.done == {"settle_attempt": 1}
        settled = await svc.get(view.payment.id)
        charged = sim.ledger.net_charged(view.payment.id)
        if token == "sim_timeout":
            assert settled.payment.status is PaymentStatus.FAILED
            assert settled.payment.failure_code == "provider_timeout"
            assert charged == 0
        else:
            assert settled.payment.status is PaymentStatus.SUCCEEDED
            assert charged == 5000
        assert len(sim.ledger.charged(view.payment.id)) <= 1

    run_virtual(scenario())


def test_a_timeout_that_charged_is_found_by_an_immediate_query(store: Store) -> None:
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock = LoopClock()
        sim = simulator(clock=clock, hang_s=60)
        other = simulator("sim_b", clock=clock)
        svc = service(store, {"sim_a": sim, "sim_b": other}, clock, timeout_s=2, deadline_s=10)
        view = await svc.pay(pay_cmd(mid, "sim_timeout_charged"))
        assert view.payment.status is PaymentStatus.SUCCEEDED
        (attempt,) = view.attempts  # no failover: the query found the money had moved
        assert attempt.raw_code == "TIMEOUT" and attempt.status is AttemptStatus.SUCCEEDED
        assert other.calls == 0
        assert sim.ledger.net_charged(view.payment.id) == 5000

    run_virtual(scenario())


def test_a_timeout_that_did_not_charge_fails_over_after_the_query(store: Store) -> None:
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock = LoopClock()
        a = simulator(clock=clock, hang_s=60, timeout_rate=1.0)
        b = simulator("sim_b", clock=clock)
        svc = service(store, {"sim_a": a, "sim_b": b}, clock, timeout_s=2, deadline_s=10)
        view = await svc.pay(pay_cmd(mid))
        assert view.payment.status is PaymentStatus.SUCCEEDED
        first, second = view.attempts
        assert (first.status, first.unified_code, first.decision) == (
            AttemptStatus.FAILED,
            "provider_timeout",
            "failover",
        )
        assert "status query: TRADE_NOT_FOUND" in (first.reason or "")
        assert second.provider == "sim_b" and second.status is AttemptStatus.SUCCEEDED
        assert a.ledger.net_charged(view.payment.id) + b.ledger.net_charged(view.payment.id) == 5000

    run_virtual(scenario())


def test_an_outage_fails_over_to_the_next_channel(store: Store) -> None:
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock = LoopClock()
        down = simulator(clock=clock, outage=True)
        up = simulator("sim_b", clock=clock)
        view = await service(store, {"sim_a": down, "sim_b": up}, clock).pay(pay_cmd(mid))
        assert view.payment.status is PaymentStatus.SUCCEEDED
        first, second = view.attempts
        assert first.raw_code == "CONNECTION_REFUSED"
        assert first.unified_code == "provider_unavailable"
        assert first.decision == "failover"
        assert second.provider == "sim_b"

    run_virtual(scenario())


def test_an_outage_with_no_other_channel_fails_with_a_technical_code(store: Store) -> None:
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock = LoopClock()
        sim = simulator(clock=clock, outage=True)
        view = await service(store, {"sim_a": sim}, clock).pay(pay_cmd(mid))
        assert view.payment.status is PaymentStatus.FAILED
        assert view.payment.failure_code == "provider_unavailable"
        assert [a.raw_code for a in view.attempts] == ["CONNECTION_REFUSED"] * 2  # one retry
        assert sim.calls == 2

    run_virtual(scenario())


def test_an_error_answer_is_queried_then_retried_with_backoff(store: Store) -> None:
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock = LoopClock()
        sim = simulator(clock=clock)
        svc = service(store, {"sim_a": sim}, clock)
        start = clock.monotonic()
        view = await svc.pay(pay_cmd(mid, "sim_error_system_error"))
        assert view.payment.status is PaymentStatus.FAILED
        assert view.payment.failure_code == "provider_error"
        first, second = view.attempts
        assert first.decision == "retry_later" and second.decision == "do_not_retry"
        assert 0 < clock.monotonic() - start <= 1.0 + 1e-6  # full jitter under the 1 s base

    run_virtual(scenario())


def test_expired_credentials_are_refreshed_once_then_retried(store: Store) -> None:
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock = LoopClock()
        sim = simulator(clock=clock, credentials_expired=True)
        view = await service(store, {"sim_a": sim}, clock).pay(pay_cmd(mid))
        assert view.payment.status is PaymentStatus.SUCCEEDED
        first, second = view.attempts
        assert (first.raw_code, first.decision) == ("TOKEN_EXPIRED", "refresh_credentials")
        assert second.provider == "sim_a" and second.status is AttemptStatus.SUCCEEDED

    run_virtual(scenario())


def test_3ds_puts_the_payment_in_requires_action(store: Store) -> None:
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock = LoopClock()
        view = await service(store, {"sim_a": simulator(clock=clock)}, clock).pay(
            pay_cmd(mid, "sim_3ds")
        )
        assert view.payment.status is PaymentStatus.REQUIRES_ACTION
        assert view.attempts[0].decision == "authenticate"

    run_virtual(scenario())


def test_no_channel_for_the_method_changes_nothing(store: Store) -> None:
    mid, _ = make_merchant(store)
    before = count_rows(store)

    async def scenario() -> None:
        clock = LoopClock()
        cmd = PayCommand(mid, "o-1", Money(100, "CNY"), "wechat_pay")
        with pytest.raises(InvalidInput) as info:
            await service(store, {"sim_a": simulator(clock=clock)}, clock).pay(cmd)
        assert info.value.code == "payment_method_unavailable"

    run_virtual(scenario())
    assert count_rows(store) == before


def test_routing_skips_channels_that_cannot_take_the_method(store: Store) -> None:
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock = LoopClock()
        a = simulator("sim_a", clock=clock, methods=("card",))
        b = simulator("sim_b", clock=clock, methods=("card", "alipay"))
        cmd = PayCommand(mid, "o-1", Money(100, "CNY"), "alipay")
        view = await service(store, {"sim_a": a, "sim_b": b}, clock).pay(cmd)
        assert view.attempts[0].provider == "sim_b"
        assert "skipped sim_a" in (view.attempts[0].reason or "")

    run_virtual(scenario())


def test_partial_and_full_refunds(store: Store) -> None:
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock = LoopClock()
        sim = simulator(clock=clock)
        svc = service(store, {"sim_a": sim}, clock)
        pid = (await svc.pay(pay_cmd(mid, amount=10_000))).payment.id
        first = await svc.refund(RefundCommand(mid, pid, 3_000))
        assert first.status is RefundStatus.SUCCEEDED
        assert (await svc.get(pid)).payment.status is PaymentStatus.PARTIALLY_REFUNDED
        with pytest.raises(InvalidInput) as info:
            await svc.refund(RefundCommand(mid, pid, 7_001))
        assert info.value.code == "refund_exceeds_captured"
        rest = await svc.refund(RefundCommand(mid, pid))  # everything still refundable
        assert rest.amount.minor == 7_000
        view = await svc.get(pid)
        assert view.payment.status is PaymentStatus.REFUNDED
        assert view.payment.amount_refunded == 10_000
        assert sorted(r.amount.minor for r in view.refunds) == [3_000, 7_000]
        assert sim.ledger.net_charged(pid) == 0

    run_virtual(scenario())


def test_concurrent_refunds_the_loser_is_told_one_is_in_progress(store: Store) -> None:
    """Two refunds that each fit the captured amount but not together: the one that loses
    the race gets refund_in_progress (409), not a validation error, and nothing of it is
    booked."""
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        import asyncio

        clock = LoopClock()
        sim = simulator(clock=clock, latency_p50_ms=200, latency_p99_ms=200)
        svc = service(store, {"sim_a": sim}, clock)
        pid = (await svc.pay(pay_cmd(mid, amount=10_000))).payment.id
        results = await asyncio.gather(
            svc.refund(RefundCommand(mid, pid, 6_000)),
            svc.refund(RefundCommand(mid, pid, 5_000)),
            return_exceptions=True,
        )
        done, lost = results
        assert not isinstance(done, BaseException) and done.status is RefundStatus.SUCCEEDED
        assert isinstance(lost, Conflict) and lost.code == "refund_in_progress", lost
        view = await svc.get(pid)
        assert [r.amount.minor for r in view.refunds] == [6_000]
        assert (view.payment.amount_refunded, view.payment.amount_refund_pending) == (6_000, 0)
        assert sim.ledger.net_charged(pid) == 4_000

    run_virtual(scenario())


def test_a_refund_the_provider_could_not_take_is_resent_by_the_worker(store: Store) -> None:
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock = LoopClock()
        sim = simulator(clock=clock)
        svc = service(store, {"sim_a": sim}, clock)
        pid = (await svc.pay(pay_cmd(mid))).payment.id
        sim.settings.outage = True
        pending = await svc.refund(RefundCommand(mid, pid, 1_000))
        assert pending.status is RefundStatus.PENDING
        with pytest.raises(Conflict) as racing:  # the pending amount is reserved
            await svc.refund(RefundCommand(mid, pid, 4_001))
        assert racing.value.code == "refund_in_progress"
        sim.settings.outage = False
        await clock.sleep(5)
        report = await Worker(svc).sweep()
        assert report.done == {"resend_refund": 1}
        view = await svc.get(pid)
        assert view.refunds[0].status is RefundStatus.SUCCEEDED
        assert view.payment.amount_refunded == 1_000
        assert sim.ledger.net_charged(pid) == 4_000

    run_virtual(scenario())


def test_many_overlapping_payments_never_double_charge(store: Store) -> None:
    """200 concurrent payments against a channel that times out, sometimes after charging,
    and loses responses: after the worker, the store and the ledger agree one by one."""
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        import asyncio

        clock = LoopClock()
        sim = simulator(
            clock=clock,
            latency_p50_ms=100,
            latency_p99_ms=900,
            timeout_rate=0.1,
            charged_on_timeout=0.5,
            lost_response_rate=0.05,
            success_rate=0.9,
            declines={"INSUFFICIENT_FUNDS": 1},
            hang_s=30,
        )
        svc = service(store, {"sim_a": sim}, clock, timeout_s=2)
        views = await asyncio.gather(
            *(svc.pay(pay_cmd(mid, order=f"o-{i}", amount=100 + i)) for i in range(200))
        )
        await clock.sleep(3)
        await Worker(svc, WorkerSettings(batch=500)).drain()
        for v in views:
            final = await svc.get(v.payment.id)
            charges = sim.ledger.charged(v.payment.id)
            assert len(charges) <= 1
            if final.payment.status is PaymentStatus.SUCCEEDED:
                assert sim.ledger.net_charged(v.payment.id) == v.payment.amount.minor
            else:
                assert final.payment.status is PaymentStatus.FAILED
                assert sim.ledger.net_charged(v.payment.id) == 0
        statuses = {(await svc.get(v.payment.id)).payment.status for v in views}
        assert statuses == {PaymentStatus.SUCCEEDED, PaymentStatus.FAILED}

    run_virtual(scenario())


def test_a_card_tried_15_times_in_30_days_is_not_retried_again(store: Store) -> None:
    """Visa's reattempt limit counts the card's earlier declines across payments."""
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock = LoopClock()
        # card code 91 (issuer unavailable, Visa category 2) is retried while allowed
        sim = simulator(clock=clock)
        sim.code_map = "card"  # an acquirer passing network codes through
        budget = RetryBudget(BudgetSettings(floor=100))  # the network's limit, not ours
        svc = service(store, {"sim_a": sim}, clock, budget=budget)
        first = await svc.pay(pay_cmd(mid, "sim_error_91", order="o-0"))
        assert [a.decision for a in first.attempts] == ["retry_later", "customer_action"]
        for i in range(1, 8):
            await svc.pay(pay_cmd(mid, "sim_error_91", order=f"o-{i}"))
        # 16 failed tries of this token now: the limit forbids even the first retry
        last = await svc.pay(pay_cmd(mid, "sim_error_91", order="o-last"))
        assert [a.decision for a in last.attempts] == ["do_not_retry"]
        assert "30 days" in (last.attempts[0].reason or "")

    run_virtual(scenario())


def test_a_spent_retry_budget_stops_same_channel_retries(store: Store) -> None:
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock = LoopClock()
        sim = simulator(clock=clock, outage=True)
        svc = service(store, {"sim_a": sim}, clock)
        decisions = []
        for i in range(6):  # an outage: every payment wants its one retry
            view = await svc.pay(pay_cmd(mid, order=f"o-{i}"))
            decisions.append([a.decision for a in view.attempts])
        retried = sum(1 for d in decisions if d[0] == "retry_later")
        assert retried == 3  # the floor of the budget, then no more retries
        assert decisions[-1] == ["do_not_retry"]

    run_virtual(scenario())


def test_the_merchant_sets_its_own_checkout_deadline(store: Store) -> None:
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock = LoopClock()
        sim = simulator(clock=clock, hang_s=60)
        svc = service(store, {"sim_a": sim}, clock, timeout_s=30, deadline_s=3)
        start = clock.monotonic()
        quick = await svc.pay(replace(pay_cmd(mid, "sim_timeout", order="a"), deadline_s=1.5))
        assert clock.monotonic() - start == pytest.approx(1.5)
        assert quick.payment.status is PaymentStatus.PROCESSING

    run_virtual(scenario())
