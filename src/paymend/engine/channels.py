"""The channels of `paymend.yaml`, built: simulated ones, and real connectors from
their `type` (providers/registry.py) with their credentials from the environment."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import httpx

from paymend.config import PaymendConfig, channel_credentials
from paymend.config.channels import ConnectorChannel, SimulatorChannel
from paymend.datafiles import DataFileError
from paymend.domain.clock import Clock
from paymend.providers.base import Capabilities, Provider
from paymend.providers.registry import ChannelSpec
from paymend.providers.registry import build as build_connector
from paymend.providers.simulator import SimulatedProvider, SimulatorSettings
from paymend.providers.simulator_ledger import SqliteLedger


def build_providers(config: PaymendConfig, clock: Clock) -> dict[str, SimulatedProvider]:
    sims: dict[str, SimulatedProvider] = {}
    path = config.simulator.ledger
    for name, ch in config.providers.items():
        if not isinstance(ch, SimulatorChannel):
            continue
        sims[name] = SimulatedProvider(
            name,
            SimulatorSettings(
                methods=tuple(ch.methods),
                currencies=tuple(ch.currencies) if ch.currencies else None,
                regions=tuple(ch.regions) if ch.regions else None,
                success_rate=ch.success_rate,
                declines=dict(ch.declines),
                authentication_rate=ch.authentication_rate,
                latency_p50_ms=ch.latency_ms.p50,
                latency_p99_ms=ch.latency_ms.p99,
                timeout_rate=ch.timeout_rate,
                charged_on_timeout=ch.charged_on_timeout,
                lost_response_rate=ch.lost_response_rate,
                error_rate=ch.error_rate,
                outage=ch.outage,
            ),
            clock,
            seed=config.seed,
            ledger=SqliteLedger(path) if path else None,
        )
    return sims


def channel_specs(
    config: PaymendConfig,
    config_path: str | Path,
    environ: Mapping[str, str] | None = None,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> list[ChannelSpec]:
    """What each real channel's connector is given (providers/registry.py). A missing
    credential refuses to start, naming the channel, the secret and where it is read."""
    creds = channel_credentials(config, config_path, environ)
    specs = []
    for name, ch in config.providers.items():
        if not isinstance(ch, ConnectorChannel):
            continue
        missing = [c for c in creds[name] if c.value is None]
        if missing:
            c = missing[0]
            raise DataFileError(
                str(config_path),
                None,
                f"providers.{name}: credential '{c.name}' is missing: set {c.env} "
                "or add it to the secrets file",
            )
        options = ch.model_dump(
            exclude={"type", "methods", "currencies", "regions", "base_url", "timeout"}
        )
        options.update(options.pop("options"))
        specs.append(
            ChannelSpec(
                name=name,
                type=ch.type,
                base_url=ch.url(),
                capabilities=Capabilities(
                    methods=frozenset(ch.methods),
                    currencies=frozenset(ch.currencies) if ch.currencies else None,
                    regions=frozenset(ch.regions) if ch.regions else None,
                ),
                options=options,
                credentials={c.name: c.value.get_secret_value() for c in creds[name] if c.value},
                timeout_s=ch.timeout,
                transport=(transports or {}).get(name),
            )
        )
    return specs


def build_channels(
    config: PaymendConfig,
    config_path: str | Path,
    clock: Clock,
    *,
    environ: Mapping[str, str] | None = None,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> tuple[dict[str, Provider], dict[str, SimulatedProvider]]:
    """Every configured channel, in the file's order: simulated ones and real
    connectors (built by the registry from their `type`)."""
    sims = build_providers(config, clock)
    built: dict[str, Provider] = {}
    for spec in channel_specs(config, config_path, environ, transports):
        try:
            built[spec.name] = build_connector(spec, clock)
        except ValueError as exc:  # a credential that does not parse: a key neither PEM nor
            # base64, an API key of the wrong shape (the message names no secret)
            raise DataFileError(str(config_path), None, f"providers.{spec.name}: {exc}") from None
    providers: dict[str, Provider] = {}
    for name in config.providers:
        providers[name] = sims[name] if name in sims else built[name]
    return providers, sims
