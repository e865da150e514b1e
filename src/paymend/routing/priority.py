"""Static priority routing: the merchant's list, filtered to channels that can take the
payment. Health-aware ranking replaces the ordering, not this interface."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from paymend.domain.channel import Capabilities


@dataclass(frozen=True, slots=True)
class Route:
    channels: tuple[str, ...]
    reason: str


def rank(
    priority: Sequence[str],
    capabilities: Mapping[str, Capabilities],
    *,
    method: str,
    currency: str,
    region: str | None,
) -> Route:
    eligible = tuple(
        name
        for name in priority
        if name in capabilities and capabilities[name].supports(method, currency, region)
    )
    skipped = [n for n in priority if n not in eligible]
    reason = "merchant priority list"
    if skipped:
        reason += f"; skipped {', '.join(skipped)} (cannot take {method}/{currency})"
    return Route(eligible, reason)
