"""A provider offers `authorize`; everything else is an optional capability the engine
checks before using it, and does without when it is missing (providers/base.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from paymend.domain.channel import Capabilities
from paymend.domain.errors import InvalidInput
from paymend.domain.payment import AttemptStatus, PaymentStatus
from paymend.engine.calls import NO_STATUS_QUERY
from paymend.engine.clock import LoopClock
from paymend.engine.commands import RefundCommand
from paymend.engine.reconcile import reconcile
from paymend.engine.virtual_time import run_virtual
from paymend.providers.base import (
    Capability,
    ChargeRequest,
    Provider,
    ProviderConnectionError,
    ProviderOutcome,
    ProviderResult,
    StatusQuery,
    optional_capabilities,
)
from paymend.store.database import Store
from tests.engine.test_pay import pay_cmd
from tests.helpers import make_merchant, service, simulator


class AuthorizeOnly:
    """A channel that can charge and nothing else: no status query, no refunds, no
    3-D Secure completion, no settlement report. Its answer to a `lost` token never
    arrives, though the charge went through."""

    name = "bare"
    code_map = "simulator"
    capabilities = Capabilities(methods=frozenset({"card"}))

    def __init__(self) -> None:
        self.charged: list[str] = []

    async def authorize(self, request: ChargeRequest) -> ProviderResult:
        self.charged.append(request.idempotency_key)
        if request.token == "lost":
            raise ProviderConnectionError("CONNECTION_RESET", "reset by peer", sent=True)
        return ProviderResult(ProviderOutcome.SUCCEEDED, "APPROVED", "approved", "ch_1")


@pytest.fixture
def store(sqlite_url: str) -> Iterator[Store]:
    s = Store(sqlite_url, inline=True)
    yield s
    s.close()


def test_the_simulator_offers_every_capability_but_notifications_and_closing() -> None:
    sim = simulator()
    assert isinstance(sim, Provider)
    # it takes no notifications and closes nothing (its 3-D Secure hold lapses with the
    # payment: a confirm of a canceled payment is refused before any call)
    assert optional_capabilities(sim) == frozenset(Capability) - {
        Capability.INBOUND_NOTIFICATIONS,
        Capability.CLOSE_UNPAID,
    }


def test_a_bare_provider_is_a_provider_with_no_optional_capability() -> None:
    bare = AuthorizeOnly()
    assert isinstance(bare, Provider)
    assert not isinstance(bare, StatusQuery)
    assert optional_capabilities(bare) == frozenset()


def test_without_a_status_query_an_unknown_outcome_stays_unknown(store: Store) -> None:
    mid, _ = make_merchant(store)
    bare = AuthorizeOnly()

    async def scenario() -> None:
        svc = service(store, {"bare": bare}, LoopClock())
        view = await svc.pay(pay_cmd(mid, "lost"))
        assert view.payment.status is PaymentStatus.PROCESSING  # never read as failed
        (attempt,) = view.attempts
        assert attempt.status is AttemptStatus.UNKNOWN
        assert await svc.settle_attempt(attempt.id) is False  # asked again later
        again = await svc.get(view.payment.id)
        assert again.attempts[0].status is AttemptStatus.UNKNOWN
        assert len(bare.charged) == 1  # nothing was sent twice
        queried = await svc.caller.query(attempt, 1.0)
        assert (queried.status, queried.raw_code) == (AttemptStatus.UNKNOWN, NO_STATUS_QUERY)

    run_virtual(scenario())


def test_without_refunds_a_refund_is_refused_and_changes_nothing(store: Store) -> None:
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        svc = service(store, {"bare": AuthorizeOnly()}, LoopClock())
        paid = await svc.pay(pay_cmd(mid))
        assert paid.payment.status is PaymentStatus.SUCCEEDED
        with pytest.raises(InvalidInput) as refused:
            await svc.refund(RefundCommand(mid, paid.payment.id))
        assert (refused.value.code, refused.value.status) == ("refund_not_supported", 409)
        after = await svc.get(paid.payment.id)
        assert (after.payment.status, after.refunds) == (PaymentStatus.SUCCEEDED, [])

    run_virtual(scenario())


def test_reconciliation_compares_only_providers_with_a_settlement_report(store: Store) -> None:
    async def scenario() -> None:
        clock = LoopClock()
        svc = service(store, {"bare": AuthorizeOnly(), "sim_a": simulator(clock=clock)}, clock)
        report = await reconcile(svc)
        assert report.providers == ["sim_a"]

    run_virtual(scenario())
