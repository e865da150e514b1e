"""What went wrong (Failure) and what to do next (Decision): the vocabulary that
classification produces and the engine acts on."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    TECHNICAL = "technical"
    BUSINESS = "business"


class Action(StrEnum):
    """The next step after a failure. These names are a public interface."""

    RETRY_LATER = "retry_later"
    FAILOVER = "failover"
    CUSTOMER_ACTION = "customer_action"
    REFRESH_CREDENTIALS = "refresh_credentials"
    QUERY_STATUS = "query_status"
    DO_NOT_RETRY = "do_not_retry"
    AUTHENTICATE = "authenticate"


class Advice(StrEnum):
    """A provider's or network's advice on retrying (Mastercard MAC, Stripe advice_code)."""

    NEVER_RETRY = "never_retry"
    RETRY_LATER = "retry_later"
    UPDATE_DETAILS = "update_details"
    AUTHENTICATE = "authenticate"
    STOP_RECURRING = "stop_recurring"


@dataclass(frozen=True, slots=True)
class Failure:
    """A classified failure: the unified code with what the catalogue says of it, and the
    provider's raw answer kept untouched."""

    code: str
    kind: Kind
    category: str
    action: Action
    provider: str
    raw_code: str | None
    raw_field: str | None = None
    raw_message: str | None = None
    mapped: bool = True  # False: no map knew the code, the safe default was used
    retry_max: int = 0
    retry_base_s: float = 0.0
    retry_cap_s: float = 0.0
    failover: bool = False
    counts_against_health: bool = False
    alert_ops: bool = False
    visa_category: int | None = None
    advice: Advice | None = None
    advice_code: str | None = None
    retry_after_s: float | None = None  # earliest next try the network allows
    source: str | None = None

    @property
    def retry_same_channel(self) -> bool:
        return self.retry_max > 0


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    reason: str
    after_s: float = 0.0  # wait this long before acting (backoff, network advice)
    channel: str | None = None  # the channel to use next (failover, retry)
    alert_ops: bool = False
