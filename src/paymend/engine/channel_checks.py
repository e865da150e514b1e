"""`paymend channels check`: each real channel's connector asked whether its credentials
work and its provider answers, moving no money (providers/base.py `HealthCheck`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from paymend.providers.base import HealthCheck, Provider


@dataclass(frozen=True, slots=True)
class ChannelCheck:
    channel: str
    ok: bool | None  # None: nothing to check (simulated, or no health check)
    detail: str


async def check_channels(
    providers: Mapping[str, Provider], simulated: frozenset[str]
) -> list[ChannelCheck]:
    """One check per channel, in the configuration's order, one after another (a
    provider's rate limit is not spent on its own health check)."""
    found = []
    for name, provider in providers.items():
        if name in simulated:
            found.append(ChannelCheck(name, None, "simulated: nothing to check"))
        elif isinstance(provider, HealthCheck):
            result = await provider.check()
            found.append(ChannelCheck(name, result.ok, result.detail))
        else:
            found.append(ChannelCheck(name, None, "its connector has no health check"))
    return found
