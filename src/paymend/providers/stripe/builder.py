"""The registry's builder for `type: stripe` channels (providers/registry.py)."""

from __future__ import annotations

from datetime import timedelta

from paymend.domain.clock import Clock
from paymend.providers.registry import ChannelSpec
from paymend.providers.stripe.client import DEFAULT_INTENT_PARAMS, StripeProvider


def build(spec: ChannelSpec, clock: Clock) -> StripeProvider:
    """A Stripe channel from its configuration (config/channels.py StripeChannel). A `return_url`
    lets customers be sent to 3-D Secure pages and back; without one, redirect-based
    methods stay off (DEFAULT_INTENT_PARAMS) and 3-D Secure completes in Stripe.js."""
    options = spec.options
    return_url = options.get("return_url")
    caps = spec.capabilities
    read_timeout = spec.timeout_s if spec.timeout_s is not None else 20.0
    return StripeProvider(
        spec.name,
        api_key=spec.credentials["api_key"],
        webhook_secret=spec.credentials["webhook_secret"],
        clock=clock,
        base_url=spec.base_url,
        read_timeout_s=read_timeout,
        connect_timeout_s=min(3.0, read_timeout),
        currencies=sorted(caps.currencies) if caps.currencies else None,
        regions=sorted(caps.regions) if caps.regions else None,
        intent_params={"return_url": str(return_url)} if return_url else DEFAULT_INTENT_PARAMS,
        settlement_window=timedelta(days=int(options.get("settlement_days", 3))),
        transport=spec.transport,
    )
