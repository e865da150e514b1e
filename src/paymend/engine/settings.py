"""How the payment engine behaves: timeouts, deadlines, limits and the routing rules."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from paymend.routing.ranking import RoutingRules


class Policy(StrEnum):
    """How the engine works a payment."""

    DEFAULT = "default"  # route by health, query unknowns, retry and fail over
    # one attempt on the first channel, no retry, no failover, no status query, an
    # unknown outcome read as failed: what a checkout without paymend does (the lab's
    # baseline). Never for production.
    NAIVE = "naive"


@dataclass(frozen=True, slots=True)
class EngineSettings:
    provider_timeout_s: float = 10.0
    routing: tuple[str, ...] = ()  # the merchant's priority list; empty: every channel
    rules: RoutingRules | None = None  # pinned channels, volume split...; overrides routing
    costs: Mapping[str, float] = field(default_factory=dict)  # basis points per channel
    checkout_deadline_s: float = 3.0  # what fits runs in the checkout call; the rest later
    worker_deadline_s: float = 30.0  # one worker run on a payment
    settle_within_s: float = 300.0  # retries and failover stop this long after creation
    max_attempts: int = 4  # provider calls for one payment, all runs together
    seed: int | None = None  # for the backoff jitter; None: unpredictable
    policy: Policy = Policy.DEFAULT
