"""Metrics every connector counts into, one series per channel."""

from __future__ import annotations

from prometheus_client import Counter

UNTRUSTED = Counter(
    "paymend_provider_untrusted_answers_total",
    "Provider answers that could not be read or whose signature did not verify "
    "(the call's outcome is unknown and queried)",
    ["provider", "raw_code"],
)
