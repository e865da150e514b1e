"""What a protocol face needs of the channel behind it.

The faces (alipay_gateway.py, wechatpay_api.py) put a provider's wire protocol in front
of a channel that decides every charge and keeps the ledger. In tests and demos that is
the fault-injecting `SimulatedProvider`; in the lab it is a scenario's channel, whose
every fate is a pure function of the scenario's draws (lab/faces.py), so the oracle and
the naive checkout stay exact while the connector's wire code runs. This is the little
the faces use of either.
"""

from __future__ import annotations

from typing import Protocol

from paymend.domain.clock import Clock
from paymend.providers.base import ChargeRequest, ProviderResult, RefundRequest
from paymend.providers.simulator import Ledger, SimulatorSettings


class FaceChannel(Protocol):
    name: str
    clock: Clock  # a face wraps it, to hold hung calls until the caller gives up
    ledger: Ledger  # the provider's truth: what was charged, under which key
    settings: SimulatorSettings  # the faces read `outage`, `hang_s` and `query_lag_s`

    async def authorize(self, request: ChargeRequest) -> ProviderResult: ...

    async def refund(self, request: RefundRequest) -> ProviderResult: ...
