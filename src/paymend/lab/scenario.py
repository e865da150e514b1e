"""Scenario files (scenarios/*.yaml): a public format, validated with errors that name
the line. Keep these names: scenarios are shared and compared across versions."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from paymend.datafiles import At, load_model, parse_duration
from paymend.domain.currencies import EXPONENTS
from paymend.lab.fraud_spec import Fraud

Duration = Annotated[float, BeforeValidator(parse_duration)]
Share = Annotated[float, Field(ge=0.0, le=1.0)]
PAYER_TRUTHS = (
    "insufficient_funds",
    "expired_card",
    "incorrect_details",
    "needs_authentication",
    "fraud",
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AmountRange(_Strict):
    min: int = Field(gt=0)
    max: int = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> AmountRange:
        if self.max < self.min:
            raise ValueError("max must not be below min")
        return self


class Payers(_Strict):
    """The customers' truth, the same whichever channel is asked."""

    insufficient_funds: Share = 0.0
    expired_card: Share = 0.0
    incorrect_details: Share = 0.0
    needs_authentication: Share = 0.0
    fraud: Share = 0.0

    @model_validator(mode="after")
    def _at_most_one(self) -> Payers:
        if sum(getattr(self, t) for t in PAYER_TRUTHS) > 1.0:
            raise ValueError("payer shares add up to more than 1")
        return self


class Latency(_Strict):
    p50: float = Field(ge=0)
    p99: float = Field(ge=0)


# a connector channel's methods: what the provider can take at all
CONNECTOR_METHODS = {"alipay": {"alipay"}, "wechatpay": {"wechat_pay"}}


class Channel(_Strict):
    """A scenario's channel. `simulator` answers from the scenario directly; `alipay` and
    `wechatpay` are paymend's real connectors, talking in-process to the simulator's
    protocol face for that provider, whose answers come from the same scenario draws
    (lab/faces.py): the run then measures the connector's wire code too."""

    type: Literal["simulator", "alipay", "wechatpay"] = "simulator"
    methods: list[str] = Field(min_length=1)
    latency_ms: Latency = Latency(p50=100, p99=500)
    technical_error_rate: Share = 0.0
    cost_bps: float = Field(0.0, ge=0)

    @model_validator(mode="after")
    def _takes_its_methods(self) -> Channel:
        allowed = CONNECTOR_METHODS.get(self.type)
        if allowed is not None and not set(self.methods) <= allowed:
            raise ValueError(f"a {self.type} channel takes only {', '.join(sorted(allowed))}")
        return self


class Fault(_Strict):
    """A fault from `at` for `for`, on the scope its keys name (all of them must match)."""

    at: Duration
    for_: Duration = Field(alias="for")
    kind: Literal[
        "outage", "timeout", "error", "latency", "rate_limit", "credentials_expired", "payer"
    ]
    channel: str | None = None
    method: str | None = None
    bank: str | None = None
    region: str | None = None
    rate: Share = 1.0  # the share of matching calls it hits
    charged: Share = 0.0  # timeout: the share of timeouts where the money moved anyway
    code: str | None = None  # error: the raw code the provider answers
    p50: float | None = Field(None, ge=0)  # latency
    p99: float | None = Field(None, ge=0)
    insufficient_funds: Share | None = None  # payer: shifted truths
    expired_card: Share | None = None
    incorrect_details: Share | None = None
    needs_authentication: Share | None = None
    fraud: Share | None = None

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _fits_its_kind(self) -> Fault:
        if self.kind == "error" and not self.code:
            raise ValueError("an error fault needs the `code` the provider answers")
        if self.kind == "latency" and (self.p50 is None or self.p99 is None):
            raise ValueError("a latency fault needs p50 and p99 (ms)")
        shifted = [t for t in PAYER_TRUTHS if getattr(self, t) is not None]
        if self.kind == "payer" and not shifted:
            raise ValueError("a payer fault shifts at least one payer share")
        if self.kind != "payer" and shifted:
            raise ValueError(f"{', '.join(shifted)} only belongs to a payer fault")
        if self.kind == "payer" and self.channel:
            raise ValueError("a payer fault is the customers' truth: it has no channel")
        if self.kind != "timeout" and self.charged:
            raise ValueError("`charged` only belongs to a timeout fault")
        return self

    @property
    def end(self) -> float:
        return self.at + self.for_


class Journeys(_Strict):
    """What customers do after a failed payment (lab/journeys.py): a customer told of a
    next step follows it with probability `follow_advice`, `return_after` later, paying
    the order again with another method."""

    follow_advice: Share = 0.5
    return_after: Duration = Field(60.0, ge=0)


class Scenario(_Strict):
    name: str = Field(min_length=1)
    seed: int = 0
    duration: Duration = Field(gt=0)
    rate: float = Field(gt=0, description="new payments per simulated second (Poisson)")
    currency: str = "CNY"
    amount: AmountRange = AmountRange(min=100, max=50_000)
    methods: dict[str, Share] = Field(min_length=1)
    regions: dict[str, Share] = Field(default_factory=lambda: {"CN-East": 1.0})
    banks: dict[str, Share] = Field(default_factory=lambda: {"ICBC": 1.0})
    payers: Payers = Payers()
    channels: dict[str, Channel] = Field(min_length=1)
    routing: list[str] = Field(min_length=1)
    faults: list[Fault] = Field(default_factory=list)
    # customer notices by SMS to every customer (lab/notices.py): their figures in the report
    notices: bool = False
    # risk control and good customers with identities, attacked (lab/fraud.py)
    fraud: Fraud | None = None
    # each failed payment's customer journey: told a next step, paid again another way
    journeys: Journeys | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        if self.currency not in EXPONENTS:
            raise ValueError(f"unknown currency {self.currency}")
        for what, shares in (
            ("methods", self.methods),
            ("regions", self.regions),
            ("banks", self.banks),
        ):
            if abs(sum(shares.values()) - 1.0) > 1e-6:
                raise At((what,), f"{what} shares must add up to 1")
        real = [n for n, c in self.channels.items() if c.type != "simulator"]
        if real and self.currency != "CNY":
            raise At(("currency",), f"connector channels ({', '.join(real)}) take CNY only")
        unknown = [r for r in self.routing if r not in self.channels]
        if unknown:
            raise At(("routing",), f"unknown channel(s): {', '.join(unknown)}")
        offered = {m for c in self.channels.values() for m in c.methods}
        missing = [m for m in self.methods if m not in offered]
        if missing:
            raise ValueError(f"no channel takes method(s): {', '.join(missing)}")
        known: dict[str, Collection[str]] = {
            "channel": self.channels,
            "method": self.methods,
            "bank": self.banks,
            "region": self.regions,
        }
        for i, fault in enumerate(self.faults):
            for key, names in known.items():
                value = getattr(fault, key)
                if value and value not in names:
                    raise At(("faults", i, key), f"unknown {key} '{value}'")
            if fault.at >= self.duration:
                raise At(("faults", i, "at"), "the fault starts after the scenario ends")
            if fault.kind == "credentials_expired":
                self._no_connector_in(i, fault)
        attacked = self.fraud and (self.fraud.card_testing or self.fraud.account_takeover)
        if attacked and "card" not in offered:
            raise At(("fraud",), "the attacks pay by card: a channel must take card")
        return self

    def _no_connector_in(self, i: int, fault: Fault) -> None:
        """An expired credential is the simulator's fault, which paymend refreshes
        (`TOKEN_EXPIRED`): a real connector's keys do not expire and it has no refresh,
        so on a connector channel the fault could never recover."""
        hit = [
            f"{name} (type {c.type})"
            for name, c in self.channels.items()
            if c.type != "simulator"
            and fault.channel in (None, name)
            and fault.method in (None, *c.methods)
        ]
        if hit:
            where = "channel" if fault.channel else "kind"
            raise At(
                ("faults", i, where),
                "credentials_expired applies to simulator channels; it would hit the "
                f"connector channel {', '.join(hit)}, whose keys do not expire and have no "
                "refresh, so it could never recover (name a simulator channel)",
            )


def load_scenario(path: str | Path) -> Scenario:
    return load_model(Scenario, path)
