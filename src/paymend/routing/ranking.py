"""Health-aware ranking: order the channels that can take one payment by how likely each
is to succeed for THIS payment (its method, bank, region and amount band), within the
merchant's rules.

Why the estimate has this shape
-------------------------------
- Success is counted over answered calls only (`WindowStats.answered`): business
  declines are the payer's, so a wave of insufficient funds never moves a channel.
- Rates are Beta-smoothed toward a prior, `(s + a*p) / (n + a)`: three calls with one
  timeout say little, a thousand say a lot. The channel shrinks toward a global prior
  (`PRIOR`); each of its scoped windows (bank, region, ...) shrinks toward the channel,
  so a bank with few calls looks like its channel until its own evidence piles up.
- A payment's estimate is its worst applicable scope: an outage at one bank should move
  that bank's payments and nobody else's, and `worst_key` says which scope did it.
- A channel with no data sits at the prior (98%): below a proven channel, yet within
  the exploration window, so it still gets tried and learnt about.

The order is the estimate, except where the merchant said otherwise: a pinned channel
goes first; channels tied on success (within `tie_margin`) go cheapest first, then by
priority, or by the merchant's volume split; and a small share of payments explores a
near-best channel that lost on its estimate, so a recovered one is noticed. `rank` is
pure: the health snapshot, costs and randomness all come in as arguments, so the same
seed gives the same route.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from paymend.domain.channel import Capabilities
from paymend.health.keys import amount_band, channel_key, context_keys, parse_key
from paymend.health.window import WindowStats

PRIOR = 0.98
"""Success rate assumed for a channel before any evidence."""
STRENGTH = 50.0
"""Weight of the prior in calls: a window needs about this many answered calls before its
own rate counts as much as what it shrinks toward."""
EXPLORE_WINDOW = 0.05
"""Only channels whose estimate is within this of the best are ever explored: a channel
known to be failing is not sent live payments just to learn more about it."""
MAX_REASON = 300
_LIST_AT_MOST = 3  # channels named in the "then" and "skipped" parts of the reason

Stats = Callable[[str], WindowStats | None]
"""Health snapshot lookup: the window of a key, or None when it has none."""


def _no_pins() -> Mapping[str, str]:
    return MappingProxyType({})


def _no_split() -> Mapping[str, float]:
    return MappingProxyType({})


_NOTHING_BLOCKED: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class PaymentContext:
    """What routing needs to know of one payment."""

    method: str
    currency: str
    region: str | None
    bank: str | None
    amount_minor: int


@dataclass(frozen=True, slots=True)
class RoutingRules:
    """The merchant's constraints, from config; checked on construction so a bad rule
    refuses to load instead of misrouting payments."""

    priority: tuple[str, ...]
    """Candidate channels in preference order; only these are ever used."""
    pinned: Mapping[str, str] = field(default_factory=_no_pins)
    """method -> channel that goes first for that method whenever it is eligible."""
    split: Mapping[str, float] = field(default_factory=_no_split)
    """channel -> volume share, used to pick the first among channels tied on success."""
    exploration: float = 0.02
    """Share of payments that try a near-best channel first, so a recovery is noticed."""
    tie_margin: float = 0.02
    """Estimates within this of the best are tied: cost decides, then priority."""

    def __post_init__(self) -> None:
        priority = tuple(self.priority)
        if len(set(priority)) != len(priority):
            raise ValueError(f"routing priority names a channel twice: {list(priority)}")
        for method, channel in self.pinned.items():
            if channel not in priority:
                raise ValueError(f"channel {channel!r} pinned for {method!r} is not in priority")
        for channel, share in self.split.items():
            if channel not in priority:
                raise ValueError(f"split names {channel!r}, which is not in priority")
            if not (math.isfinite(share) and share >= 0):
                raise ValueError(f"split share of {channel!r} must be >= 0, got {share}")
        if not 0.0 <= self.exploration <= 1.0:
            raise ValueError(f"exploration must be in [0, 1], got {self.exploration}")
        if not 0.0 <= self.tie_margin <= 1.0:
            raise ValueError(f"tie_margin must be in [0, 1], got {self.tie_margin}")
        # frozen all the way down: the caller's dicts may change, these rules must not
        object.__setattr__(self, "priority", priority)
        object.__setattr__(self, "pinned", MappingProxyType(dict(self.pinned)))
        object.__setattr__(self, "split", MappingProxyType(dict(self.split)))


@dataclass(frozen=True, slots=True)
class Estimate:
    """A channel's estimated success for one payment. `calls` are the answered calls of
    the window that set it: the channel's, or the worst scope's when `worst_key` names
    one (a scope that pulls the estimate below the channel's own)."""

    channel: str
    success: float
    calls: int
    worst_key: str | None


@dataclass(frozen=True, slots=True)
class Route:
    """Channels to try in order (primary first), why, and the estimates behind it."""

    channels: tuple[str, ...]
    reason: str
    estimates: tuple[Estimate, ...]


def estimate(
    channel: str,
    keys: tuple[str, ...],
    stats: Stats,
    *,
    prior: float = PRIOR,
    strength: float = STRENGTH,
) -> Estimate:
    """Estimated success of `channel` for a payment whose context has these `keys` (as
    `context_keys` builds them): the lowest of the channel's smoothed rate and each
    scope's rate smoothed toward it."""
    own = channel_key(channel)
    window = stats(own)
    s, n = (window.success, window.answered) if window is not None else (0, 0)
    base = (s + strength * prior) / (n + strength)
    best, calls, worst = base, n, None
    for key in keys:
        if key == own:
            continue
        window = stats(key)
        if window is None:
            continue
        n = window.answered
        if n == 0:
            continue
        scoped = (window.success + strength * base) / (n + strength)
        if scoped < best:
            best, calls, worst = scoped, n, key
    return Estimate(channel, best, calls, worst)


def rank(
    ctx: PaymentContext,
    rules: RoutingRules,
    capabilities: Mapping[str, Capabilities],
    costs: Mapping[str, float],
    stats: Stats,
    rng: random.Random,
    blocked: Mapping[str, str] = _NOTHING_BLOCKED,
) -> Route:
    """Rank the channels that can take this payment. `costs` are per channel in basis
    points of the amount (missing: unknown, ranked after known costs); `blocked` maps a
    channel to why it must not be used now ("circuit open", "paused by ops"). An unknown
    currency or a negative amount is a ValueError: such a payment must not get this far."""
    eligible: list[str] = []
    skipped: dict[str, list[str]] = {}  # why -> channels, so each reason is said once
    for name in rules.priority:
        caps = capabilities.get(name)
        if caps is None:
            why = "no such channel"
        elif not caps.supports(ctx.method, ctx.currency, ctx.region):
            why = f"cannot take {_what(ctx)}"
        elif name in blocked:
            why = blocked[name]
        else:
            eligible.append(name)
            continue
        skipped.setdefault(why, []).append(name)
    if not eligible:
        why = f"skipped {_skipped(skipped)}" if skipped else "routing priority is empty"
        return Route((), _clip(f"no eligible channel: {why}"), ())

    band = amount_band(ctx.amount_minor, ctx.currency)
    ests = {
        c: estimate(c, context_keys(c, ctx.method, ctx.bank, ctx.region, band), stats)
        for c in eligible
    }
    index = {c: i for i, c in enumerate(eligible)}  # eligible keeps priority order

    def cost(c: str) -> float:
        return costs.get(c, math.inf)

    # Tie groups, best first: each is anchored at its best estimate and holds every
    # channel within tie_margin of it; inside a group, cheaper first, then priority.
    by_success = sorted(eligible, key=lambda c: (-ests[c].success, cost(c), index[c]))
    order: list[str] = []
    first_group: list[str] = []
    i = 0
    while i < len(by_success):
        floor = ests[by_success[i]].success - rules.tie_margin
        j = i + 1
        while j < len(by_success) and ests[by_success[j]].success >= floor:
            j += 1
        group = sorted(by_success[i:j], key=lambda c: (cost(c), index[c]))
        first_group = first_group or group
        order += group
        i = j

    tags: list[str] = []
    pin = rules.pinned.get(ctx.method)
    if pin is not None and pin in ests:
        _to_front(order, pin)
        tags.append(f"pinned for {ctx.method}")
    else:
        shares = [(c, rules.split.get(c, 0.0)) for c in first_group]
        shares = [(c, w) for c, w in shares if w > 0]
        if len(first_group) > 1 and shares:
            _to_front(order, _weighted_pick(shares, rng))
            tags.append("volume split")
        elif len(first_group) > 1:
            head, others = first_group[0], first_group[1:]
            cheaper = cost(head) < min(cost(c) for c in others)
            tags.append(
                "tie on success: cheaper first"
                if cheaper
                else "tie on success and cost: priority order"
            )
        if rules.exploration > 0 and len(order) > 1 and rng.random() < rules.exploration:
            best = max(e.success for e in ests.values())
            near = [  # tied channels already share the traffic; the runners-up need it
                c
                for c in order[1:]
                if c not in first_group and ests[c].success >= best - EXPLORE_WINDOW
            ]
            if near:
                _to_front(order, near[rng.randrange(len(near))])
                tags = ["exploring"]

    route = tuple(order)
    estimates = tuple(ests[c] for c in route)
    return Route(route, _reason(estimates, costs, tags, skipped), estimates)


def _to_front(order: list[str], channel: str) -> None:
    order.remove(channel)
    order.insert(0, channel)


def _weighted_pick(shares: list[tuple[str, float]], rng: random.Random) -> str:
    """One channel, with probability proportional to its share."""
    point = rng.random() * sum(w for _, w in shares)
    for channel, weight in shares:
        point -= weight
        if point < 0:
            return channel
    return shares[-1][0]  # point landed on the total through rounding


def _what(ctx: PaymentContext) -> str:
    return "/".join(p for p in (ctx.method, ctx.currency, ctx.region) if p is not None)


def _pct(p: float) -> str:
    """One decimal, rounded down: 99.96% shows as 99.9%, never as a perfect 100.0%."""
    return f"{math.floor(p * 1000) / 10:.1f}%"


def _scope(key: str) -> str:
    _, parts = parse_key(key)
    return ",".join(f"{d}={v}" for d, v in parts.items())


def _skipped(skipped: dict[str, list[str]]) -> str:
    return ", ".join(f"{', '.join(names)} ({why})" for why, names in skipped.items())


def _some(items: list[str]) -> str:
    shown = ", ".join(items[:_LIST_AT_MOST])
    more = len(items) - _LIST_AT_MOST
    return f"{shown} +{more} more" if more > 0 else shown


def _reason(
    estimates: tuple[Estimate, ...],
    costs: Mapping[str, float],
    tags: list[str],
    skipped: dict[str, list[str]],
) -> str:
    """One line a support engineer can read: who goes first and why, then the rest."""
    first = estimates[0]
    head = first.channel + " first" + (f" ({', '.join(tags)})" if tags else "")
    head += f": est. success {_pct(first.success)}"
    if first.worst_key is not None:
        head += f" for {_scope(first.worst_key)}"
    head += f" over {first.calls} calls" if first.calls else " (no calls yet: prior)"
    if first.channel in costs:
        head += f", cost {costs[first.channel]:g} bps"
    parts = [head]
    if len(estimates) > 1:
        parts.append(
            "then "
            + _some(
                [
                    f"{e.channel} {_pct(e.success)}"
                    + (f" ({_scope(e.worst_key)})" if e.worst_key is not None else "")
                    for e in estimates[1:]
                ]
            )
        )
    if skipped:
        parts.append(f"skipped {_skipped(skipped)}")
    return _clip("; ".join(parts))


def _clip(text: str) -> str:
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"
