"""Connector channels in the lab: paymend's real Alipay and WeChat Pay connectors talking,
in-process, to the simulator's protocol faces, whose answers come from the scenario.

A scenario channel of `type: alipay` or `wechatpay` is built in three layers:

- the connector (providers/alipay, providers/wechatpay), exactly as `paymend.yaml` builds
  it, with keys made for the run; its HTTP goes through `httpx.ASGITransport`, so no
  socket is opened and every wait is virtual time;
- the face (sim/alipay_gateway.py, sim/wechatpay_api.py): verifies the connector's
  signatures, signs its answers, maps outcomes to the provider's codes;
- behind the face, a `FaceLabChannel`: the lab's scenario channel (lab/provider.py), so a
  call's fate is the same pure function of (seed, payment, channel, attempt) and its
  moment as on a simulator channel, and the exact oracle and the naive checkout stay
  valid. The payer is found by the payment code the connector sends (`lab<n>`: the
  buyer's wallet, whose truth, bank and region are the arrival's).

`LabWire` wraps the face for what happens before the provider's gateway reads a request:
an outage answers 503 (nothing processed), and a status query takes the latency the
scenario draws for it, as the lab's own `query` does. A buyer whose wallet asks for a
password (the payer's `needs_authentication`) confirms it `BUYER_CONFIRMS_S` later; the
status queries then find the trade paid.

Notifications are not sent: the engine learns every outcome from answers and status
queries, as on a simulator channel (the notification path is tested on its own,
tests/providers/*/test_end_to_end.py).
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import httpx

from paymend.domain.channel import Capabilities
from paymend.domain.clock import Clock
from paymend.lab.arrivals import Arrival
from paymend.lab.draws import query_draw
from paymend.lab.fate import HANG_S, Fates
from paymend.lab.provider import ARRIVAL_KEY, TRUTH_KEY, LabProvider
from paymend.lab.scenario import Scenario
from paymend.providers.base import (
    ChargeRequest,
    Provider,
    ProviderConnectionError,
    ProviderOutcome,
    ProviderResult,
)
from paymend.providers.registry import ChannelSpec, build
from paymend.providers.simulator import APPROVED, ChargeState, Ledger, SimulatorSettings
from paymend.sim.alipay_gateway import AlipayGateway, GatewayKeys
from paymend.sim.face import Scope
from paymend.sim.wechatpay_api import MerchantKeys, WechatpayApi

BUYER_CONFIRMS_S = 20.0  # a buyer asked for the wallet's password confirms this much later
TOKEN_PREFIX = "lab"  # noqa: S105 - not a secret: the payment code `lab<n>` names the buyer of arrival n
PENDING_PAYMENT = "lab-arrival-"  # a charge's payment id until the run names it
URLS = {"alipay": "http://alipay.lab/gateway.do", "wechatpay": "http://wechatpay.lab"}
_WECHAT_QUERY = re.compile(r"^/v3/pay/transactions/out-trade-no/([^/]+)$")


def payment_code(n: int) -> str:
    """The payment code the buyer of arrival `n` shows the shop."""
    return f"{TOKEN_PREFIX}{n}"


class Refused(Exception):
    """An outage: the provider refused the call before reading it (answered 503)."""


class FaceLabChannel(LabProvider):
    """The scenario channel behind a protocol face. The face asks it to charge under the
    trade's `out_trade_no` with the buyer's payment code; it finds the buyer and draws the
    call's fate as the lab's simulator channels do."""

    def __init__(
        self,
        name: str,
        scenario: Scenario,
        fates: Fates,
        clock: Clock,
        ledger: Ledger,
        buyers: dict[int, Arrival],
    ) -> None:
        super().__init__(name, scenario, fates, clock, ledger)
        self.loop_clock = clock  # the face wraps `clock` to hold hung calls
        self.buyers = buyers
        methods = tuple(self.channel.methods)
        self.settings = SimulatorSettings(methods=methods, hang_s=HANG_S)

    async def authorize(self, request: ChargeRequest) -> ProviderResult:
        token = request.token or ""
        if not token.startswith(TOKEN_PREFIX):
            return ProviderResult(ProviderOutcome.DECLINED, "INCORRECT_DETAILS", "no such buyer")
        n = int(token.removeprefix(TOKEN_PREFIX))
        buyer = self.buyers[n]
        charge = ChargeRequest(
            request.idempotency_key,
            f"{PENDING_PAYMENT}{n}",
            request.amount,
            buyer.method,
            bank=buyer.bank,
            region=buyer.region,
            metadata={TRUTH_KEY: buyer.truth, ARRIVAL_KEY: str(n)},
        )
        try:
            return await super().authorize(charge)
        except ProviderConnectionError as exc:
            if exc.sent:
                raise
            raise Refused(exc.raw_code) from exc

    def _book(self, request: ChargeRequest, outcome: ProviderOutcome, code: str) -> ProviderResult:
        """Booked as the call arrives (also when its answer is then lost): a wallet that
        asks for the password has its buyer confirm `BUYER_CONFIRMS_S` later."""
        result = super()._book(request, outcome, code)
        if outcome is ProviderOutcome.REQUIRES_ACTION:
            loop = asyncio.get_running_loop()
            loop.call_later(BUYER_CONFIRMS_S, self._buyer_confirms, request.idempotency_key)
        return result

    def _buyer_confirms(self, key: str) -> None:
        charge = self.ledger.get(key)
        if charge is not None and charge.state is ChargeState.AWAITING_AUTHENTICATION:
            charge.state = ChargeState.CHARGED
            charge.result = ProviderResult(
                ProviderOutcome.SUCCEEDED, APPROVED, "approved", charge.reference
            )

    def query_latency(self, key: str) -> float | None:
        """A status query's latency now, drawn as the lab's `query` draws it; None when
        an outage refuses it."""
        place = self._keys.get(key)
        asked = self._queries[key] = self._queries.get(key, 0) + 1
        z = 0.0
        if place is not None:
            z = query_draw(self.seed, place.payment, self.name, place.attempt, asked)
        return self.fates.query_s(self.name, self.loop_clock.monotonic(), z)


@dataclass
class LabWire:
    """ASGI in front of a face: outages and status queries' latency (see the module)."""

    app: Any
    channel: FaceLabChannel
    kind: str
    requests: int = field(default=0)  # every request that reached the face's gateway

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        queried = self._queried(scope, body)
        if queried is not None:
            latency = self.channel.query_latency(queried)
            if latency is None:
                await _unavailable(send)
                return
            await self.channel.loop_clock.sleep(latency)
        self.requests += 1
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        try:
            await self.app(scope, replay, send)
        except Refused:
            await _unavailable(send)

    def _queried(self, scope: Scope, body: bytes) -> str | None:
        """The `out_trade_no` a status query asks about, if the request is one."""
        if self.kind == "wechatpay":
            found = _WECHAT_QUERY.match(scope["path"])
            return found.group(1) if found and scope["method"] == "GET" else None
        params = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        params |= dict(parse_qsl(body.decode("utf-8", "replace")))
        if params.get("method") != "alipay.trade.query":
            return None
        try:
            biz = json.loads(params.get("biz_content") or "{}")
        except json.JSONDecodeError:
            return None
        return str(biz.get("out_trade_no", "")) if isinstance(biz, dict) else None


@dataclass
class ConnectorChannel:
    """One scenario channel of a connector type: the three layers, for the run."""

    provider: Provider  # the connector the engine calls
    lab: FaceLabChannel  # the scenario's side: its calls and its ledger
    face: AlipayGateway | WechatpayApi
    wire: LabWire

    def signed_requests(self) -> int:
        """Requests the face authenticated and answered (the connector's wire code ran)."""
        return len(self.face.calls)


def connector_channel(
    name: str,
    scenario: Scenario,
    fates: Fates,
    clock: Clock,
    buyers: dict[int, Arrival],
    timeout_s: float,
) -> ConnectorChannel:
    """Build the connector of channel `name`, its face and the scenario behind it, with
    keys made for this run. The channel keeps a ledger of its own: the face's bills and
    lookups by reference see that provider's trades only (`gather` joins them)."""
    spec = scenario.channels[name]
    lab = FaceLabChannel(name, scenario, fates, clock, Ledger(), buyers)
    face: AlipayGateway | WechatpayApi
    if spec.type == "alipay":
        keys = GatewayKeys.generate()
        face = AlipayGateway(keys, lab)
        options: dict[str, Any] = {"app_id": keys.app_id}
        credentials = keys.credentials()
    else:
        wechat = MerchantKeys.generate()
        face = WechatpayApi(wechat, lab)
        options, credentials = dict(wechat.options()), wechat.credentials()
    wire = LabWire(face, lab, spec.type)
    channel_spec = ChannelSpec(
        name=name,
        type=spec.type,
        base_url=URLS[spec.type],
        capabilities=Capabilities(frozenset(spec.methods), frozenset({"CNY"})),
        options=options,
        credentials=credentials,
        timeout_s=timeout_s,
        transport=httpx.ASGITransport(app=wire),
    )
    return ConnectorChannel(build(channel_spec, clock), lab, face, wire)


def gather(ledger: Ledger, channels: list[ConnectorChannel], buyers: dict[int, Arrival]) -> None:
    """Join the connector channels' ledgers into the run's, each charge under its
    payment's id, known once the checkout answered (the face only ever saw the trade's
    number and the buyer); a payment that never got an id keeps its placeholder, and
    its charges count as lost."""
    for channel in channels:
        for charge in channel.lab.ledger.all_charges():
            if charge.payment_id.startswith(PENDING_PAYMENT):
                n = int(charge.payment_id.removeprefix(PENDING_PAYMENT))
                charge.payment_id = buyers[n].payment_id or charge.payment_id
            ledger.put(charge)
        ledger.refunds.update(channel.lab.ledger.refunds)


async def _unavailable(send: Any) -> None:
    """503 in front of the gateway: nothing was processed (the connectors read it so)."""
    body = b"Service Unavailable"
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})
