"""The merchant's notification policy, as data: what is told to customers, how and when.

Ops change it without a release (`notifications.policy` in paymend.yaml names the file;
the package ships `policy.yaml`). It is validated on load and a mistake names its line.
Failure notices wait `failure_hold` before going out, so a customer whose checkout is
still retrying, or whose payment succeeds a moment later, is not told "failed" first.
"""

from __future__ import annotations

from datetime import datetime, time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from paymend.datafiles import load_model, parse_duration

DEFAULT_POLICY = Path(__file__).parent / "policy.yaml"


class NoticeKind(StrEnum):
    """What a customer can be told; one notice of each kind per payment, ever."""

    PAYMENT_FAILED = "payment_failed"  # failed after the checkout gave up
    PAYMENT_SUCCEEDED = "payment_succeeded"  # succeeded after `processing` (or a failure)
    LATE_CHARGE_REFUNDED = "late_charge_refunded"  # charged late, refunded automatically
    REFUND_DONE = "refund_done"
    COMPENSATION_GRANTED = "compensation_granted"
    PAYMENT_HELD = "payment_held"  # held for review
    REVIEW_OUTCOME = "review_outcome"  # the held payment was released or rejected
    FINISH_LINK = "finish_link"  # support sent where to finish the order another way


class ChannelName(StrEnum):
    SMS = "sms"
    WECHAT = "wechat"
    EMAIL = "email"


Seconds = Annotated[float, BeforeValidator(parse_duration)]


def _clock_time(value: Any) -> time:
    if isinstance(value, int):  # YAML reads 22:00 as a sexagesimal int (1320)
        return time(value // 60 % 24, value % 60)
    if isinstance(value, str):
        try:
            return time.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"'{value}' is not a time of day such as 22:00") from None
    raise ValueError("a time of day such as 22:00")


ClockTime = Annotated[time, BeforeValidator(_clock_time)]


class QuietHours(BaseModel):
    """No notice but critical ones between `start` and `end`, in the customer's zone
    (`time_zone` when the payment names none)."""

    model_config = ConfigDict(extra="forbid")

    start: ClockTime
    end: ClockTime
    time_zone: str = "Asia/Shanghai"

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone '{value}'") from None
        return value

    def wait_s(self, now: datetime, zone: str | None = None) -> float:
        """Seconds until the quiet hours end; 0 when `now` is outside them."""
        local = now.astimezone(ZoneInfo(zone or self.time_zone))
        t = local.time().replace(tzinfo=None)
        inside = (
            self.start <= t < self.end
            if self.start <= self.end
            else (t >= self.start or t < self.end)
        )
        if not inside:
            return 0.0
        end = local.replace(hour=self.end.hour, minute=self.end.minute, second=0, microsecond=0)
        delta = (end - local).total_seconds()
        return delta if delta > 0 else delta + 86400.0


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    notify: bool = True
    critical: bool = False  # goes out in quiet hours too
    channels: list[ChannelName] | None = None  # this kind's own order; else the policy's


class SmsTemplates(BaseModel):
    """Provider template ids per notice kind (Aliyun and Tencent send a registered
    template and its parameters, never free text)."""

    model_config = ConfigDict(extra="forbid")

    sign_name: str = Field(min_length=1, max_length=40)
    templates: dict[NoticeKind, str]


WechatValue = Literal["title", "amount", "order", "step", "link"]
WechatKey = Annotated[str, Field(pattern=r"^[a-z_]+[0-9]+$")]


class WechatTemplate(BaseModel):
    """A subscription message template chosen in the WeChat console: its id, and which
    of our values fills each of its keys (`thing1: title`, `amount2: amount`, …)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=64)
    data: dict[WechatKey, WechatValue] = Field(min_length=1)


class WechatTemplates(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # the page a tap opens (a mini program page; `{payment_id}` is filled in)
    page: str | None = Field(None, max_length=200)
    templates: dict[NoticeKind, WechatTemplate]


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(1, ge=1, le=1)
    channels: list[ChannelName] = Field(min_length=1)  # in order of preference
    failure_hold: Seconds = 120.0
    quiet_hours: QuietHours | None = None
    max_per_customer_per_hour: int = Field(3, ge=1, le=100)
    # the shop's own page for a payment, `{payment_id}` or `{token}` (the signed status
    # link's token) filled in; unset: paymend's own status page, the signed link
    # `{customers.public_url}/pay/{token}?lang=…` (docs/customers.md)
    status_url: str | None = Field(None, min_length=1)
    support: str = Field(min_length=1, max_length=120)
    retry: list[Seconds] = Field(default_factory=lambda: [10.0, 60.0, 300.0], max_length=10)
    events: dict[NoticeKind, Rule]
    sms: SmsTemplates | None = None
    wechat: WechatTemplates | None = None

    @field_validator("channels")
    @classmethod
    def _no_repeats(cls, value: list[ChannelName]) -> list[ChannelName]:
        if len(set(value)) != len(value):
            raise ValueError("a channel is listed twice")
        return value

    @field_validator("status_url")
    @classmethod
    def _status_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        named = "{payment_id}" in value or "{token}" in value
        if not value.startswith(("https://", "http://")) or not named:
            raise ValueError("an http(s) URL with {payment_id} or {token} in it")
        try:
            value.format(payment_id="", token="")
        except (KeyError, IndexError, ValueError):
            raise ValueError("only {payment_id} and {token} may be filled in") from None
        return value

    def rule(self, kind: NoticeKind) -> Rule | None:
        """The rule of `kind`, or None when this kind is not told at all."""
        rule = self.events.get(kind)
        return rule if rule is not None and rule.notify else None

    def channels_for(self, kind: NoticeKind) -> list[ChannelName]:
        rule = self.events.get(kind)
        return list(rule.channels) if rule and rule.channels else list(self.channels)


def load_policy(path: str | Path | None = None) -> Policy:
    """The policy at `path` (the shipped one by default); DataFileError names the line."""
    return load_model(Policy, path or DEFAULT_POLICY)
