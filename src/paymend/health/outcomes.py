"""How a provider call counts for its channel's health."""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    SUCCESS = "success"  # the channel worked
    BUSINESS = "business"  # the channel worked; the payer could not pay (never held against it)
    TECHNICAL = "technical"  # the channel failed: errors, outages, timeouts
