"""Names of the health windows: one key string per channel and per channel x scope.

Health records an outcome under every key of its payment's context, and routing reads
the same keys back, so the two must agree on one spelling: `sim_a` for the channel as a
whole, `sim_a|bank=CMB` for that channel's calls from one bank. A failure that only one
bank, region, method or amount band sees then shows up in its own key instead of being
diluted into the channel's average.

Keys are flat strings because every store of windows (a dict in memory, Redis) indexes
by string; `parse_key` turns one back into its parts for ops and incident pages. A `|`
inside a name or value is percent-escaped (and so is `%`), so any bank name round-trips
and no value can forge another scope; `=` needs no escape, as a scope splits at its
first one and dimensions are fixed words.
"""

from __future__ import annotations

import functools

from paymend.domain.currencies import EXPONENTS

DIMENSIONS: tuple[str, ...] = ("method", "bank", "region", "amount")
"""The scopes a channel's health is split by, in the order `context_keys` lists them."""

AMOUNT_BANDS: tuple[str, ...] = ("<10", "10-100", "100-1000", ">=1000")
"""Amount bands in major units: issuers and acquirers treat small, ordinary and large
payments differently (3-D Secure exemptions, limits), so failures often follow size."""

_BAND_EDGES_MAJOR = (10, 100, 1000)
_SEP, _EQ = "|", "="


def _escape(text: str) -> str:
    if "%" in text or "|" in text:  # '%' first: escaping must not re-escape its output
        text = text.replace("%", "%25").replace("|", "%7C")
    return text


def _unescape(text: str) -> str:
    if "%" in text:
        text = text.replace("%7C", "|").replace("%25", "%")
    return text


def channel_key(channel: str) -> str:
    """The key of a channel's own window: all of its calls."""
    return _escape(channel)


def scoped_key(channel: str, dimension: str, value: str) -> str:
    """The key of a channel's calls in one scope, e.g. `sim_a|bank=CMB`."""
    if dimension not in DIMENSIONS:
        raise ValueError(f"unknown health dimension {dimension!r}; expected one of {DIMENSIONS}")
    return f"{_escape(channel)}{_SEP}{dimension}{_EQ}{_escape(value)}"


def amount_band(minor: int, currency: str) -> str:
    """The band of an amount in MAJOR units of its currency: 1500 minor units are
    `>=1000` in JPY (1500 yen), `10-100` in USD (15.00) and `<10` in KWD (1.500).
    Compared in integers, so no rounding can move an amount across an edge."""
    try:
        unit = 10 ** EXPONENTS[currency]
    except KeyError:
        raise ValueError(f"unknown currency {currency!r}") from None
    if minor < 0:
        raise ValueError(f"amount must not be negative, got {minor}")
    for band, edge in zip(AMOUNT_BANDS, _BAND_EDGES_MAJOR, strict=False):
        if minor < edge * unit:
            return band
    return AMOUNT_BANDS[-1]


@functools.lru_cache(maxsize=4096)  # asked for each channel a payment ranks, and each call
def context_keys(
    channel: str,
    method: str | None,
    bank: str | None,
    region: str | None,
    band: str | None,
) -> tuple[str, ...]:
    """Every key one payment's call on `channel` counts under: the channel key first, then
    one per scope the payment has (a payment without a bank has no bank key)."""
    ch = _escape(channel)
    keys = [ch]
    for dimension, value in zip(DIMENSIONS, (method, bank, region, band), strict=True):
        if value is not None:
            keys.append(f"{ch}{_SEP}{dimension}{_EQ}{_escape(value)}")
    return tuple(keys)


def parse_key(key: str) -> tuple[str, dict[str, str]]:
    """`sim_a|bank=CMB` -> ("sim_a", {"bank": "CMB"}): the inverse of the builders."""
    channel, *scopes = key.split(_SEP)
    if not channel:
        raise ValueError(f"health key {key!r} has no channel")
    parts: dict[str, str] = {}
    for scope in scopes:
        dimension, eq, value = scope.partition(_EQ)
        if not eq or dimension not in DIMENSIONS or dimension in parts:
            raise ValueError(f"health key {key!r}: bad scope {scope!r}")
        parts[dimension] = _unescape(value)
    return _unescape(channel), parts
