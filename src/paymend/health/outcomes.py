"""How a provider call counts for its channel's health."""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    SUCCESS = "success"  # the channel worked
    BUSINESS = "business"  # the channel worked; the payer could not pay (never held against it)
    TECHNICAL = "technical"  # the channel failed: errors, outages, bad answers
    UNKNOWN = "unknown"  # no answer in time (timeout, lost response): held against it

    @property
    def failed(self) -> bool:
        """Does this outcome count against the channel?"""
        return self in (Outcome.TECHNICAL, Outcome.UNKNOWN)
