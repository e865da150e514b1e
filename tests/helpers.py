"""Small builders shared by tests (real objects, no mocks)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from paymend.domain.clock import Clock
from paymend.domain.ids import MerchantId
from paymend.domain.roles import Role
from paymend.engine.budget import RetryBudget
from paymend.engine.clock import LoopClock
from paymend.engine.ids import IdFactory
from paymend.engine.payments import PaymentService
from paymend.engine.runtime import build_payment_service
from paymend.engine.settings import EngineSettings
from paymend.health.book import Health
from paymend.providers.base import Provider
from paymend.providers.simulator import SimulatedProvider, SimulatorSettings
from paymend.store import keys, merchants, operators
from paymend.store.database import Store
from paymend.store.tables import metadata

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
# The bound on one HTTP request of a test to a server it started: far above any answer
# paymend gives, so only a hung server fails, never a CI machine that stalls for a few
# seconds under load (httpx's default of 5 s did, now and then).
WAIT_S = 30.0


def make_merchant(store: Store, name: str = "shop") -> tuple[MerchantId, str]:
    merchant, key = store.run_sync(
        lambda conn: merchants.create(conn, MerchantId(f"mer_{name}"), name, NOW)
    )
    return merchant.id, key


def make_operator(store: Store, name: str = "ops-lin", role: str = "ops") -> str:
    """An operator with one key; returns the key's secret."""

    def create(conn: sa.Connection) -> str:
        op = operators.create(conn, f"opr_{name}", name, Role(role), NOW)
        return keys.issue(conn, keys.OPERATOR, op.id, NOW)[1]

    return store.run_sync(create)


def count_rows(store: Store) -> dict[str, int]:
    """Row count of every table: a test compares it before and after a refused request."""

    def read(conn: sa.Connection) -> dict[str, int]:
        return {
            t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in metadata.sorted_tables
        }

    return store.run_sync(read)


def simulator(
    name: str = "sim_a", clock: LoopClock | None = None, **settings: Any
) -> SimulatedProvider:
    settings.setdefault("methods", ("card", "alipay"))
    return SimulatedProvider(name, SimulatorSettings(**settings), clock or LoopClock(), seed=7)


def service(
    store: Store,
    providers: Mapping[str, Provider],
    clock: Clock,
    *,
    timeout_s: float = 5.0,
    deadline_s: float = 10.0,
    routing: tuple[str, ...] | None = None,
    health: Health | None = None,
    budget: RetryBudget | None = None,
) -> PaymentService:
    """A payment engine as the runtime builds it; `health` and `budget` replace the
    in-memory health book and the default retry budget."""
    return build_payment_service(
        store,
        providers,
        clock,
        EngineSettings(
            provider_timeout_s=timeout_s,
            checkout_deadline_s=deadline_s,
            routing=routing or tuple(providers),
            seed=1,
        ),
        IdFactory(seed=1),
        health=health,
        budget=budget,
    )


class ManualClock:
    """A clock the test moves by hand, for real I/O on a normal event loop: job schedules
    (hours of retries) pass in one call to `advance`, network calls stay real."""

    def __init__(self, start: datetime = NOW) -> None:
        self._now = start
        self._mono = 0.0

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    async def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)
        self._mono += seconds
