"""Which connector builds a channel of each `type`, and what it is given to build one.

A real channel in `paymend.yaml` (`type: alipay`, …) becomes a Provider here: the
runtime turns its configuration into a `ChannelSpec` (the URL, what it accepts, its
non-secret options and its credentials, already read from the environment or the
secrets file) and calls the builder registered for its type. A connector registers
with one line in `CONNECTORS`, `"<type>": "<module>:<function>"`; the module is
imported only when a channel of that type is configured, so a connector's SDK is
never loaded by a shop that does not use it.

The builder is `build(spec: ChannelSpec, clock: Clock) -> Provider`. It must not call
out (the process may start while the provider is down): `paymend channels check` asks
each channel's `HealthCheck` capability (providers/base.py), when it has one, for that.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import httpx

from paymend.domain.channel import Capabilities
from paymend.domain.clock import Clock
from paymend.providers.base import Provider

# type -> "module:function" building a Provider from a ChannelSpec
CONNECTORS: dict[str, str] = {
    "alipay": "paymend.providers.alipay:build",
    "adyen": "paymend.providers.adyen:build",
    "stripe": "paymend.providers.stripe:build",
    "wechatpay": "paymend.providers.wechatpay:build",
}


@dataclass(frozen=True, slots=True)
class ChannelSpec:
    """What a connector is given to build one channel."""

    name: str  # the channel's name in paymend.yaml (and in its notification URL)
    type: str
    base_url: str
    capabilities: Capabilities
    options: Mapping[str, Any] = field(default_factory=dict)  # its non-secret settings
    credentials: Mapping[str, str] = field(default_factory=dict, repr=False)  # secrets
    timeout_s: float | None = None  # per call; the engine's deadline cuts it shorter
    # how HTTP reaches the provider: None, the network; the lab and tests pass an
    # in-process transport (httpx.ASGITransport over the simulator's protocol face)
    transport: httpx.AsyncBaseTransport | None = None


Builder = Callable[[ChannelSpec, Clock], Provider]


class UnknownConnector(LookupError):
    """No connector is registered for a channel's type."""


def builder(kind: str) -> Builder:
    """The builder registered for `kind`, imported now."""
    target = CONNECTORS.get(kind)
    if target is None:
        known = ", ".join(sorted(CONNECTORS))
        raise UnknownConnector(f"no connector for type '{kind}' (available: {known})")
    module, _, function = target.partition(":")
    return cast(Builder, getattr(importlib.import_module(module), function))


def build(spec: ChannelSpec, clock: Clock) -> Provider:
    return builder(spec.type)(spec, clock)
