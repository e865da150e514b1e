"""The live health page's figures: per channel, and per bank, region and method within
it, and per bank and region across every channel (what tells "CMB is down" from "sim_a
is down for CMB"), read from the health book the engine records every call in
(health/book.py), with a badge by the configured thresholds; plus the active controls
and open incidents.

Rates count what the channel answered (successes, technical failures, unknowns), as the
breakers and playbooks do: a card declined for lack of funds shows the channel works.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from paymend.config import ConsoleConfig
from paymend.domain.control import Control
from paymend.domain.incident import Incident
from paymend.engine.runtime import Runtime
from paymend.health.book import HISTORY_BUCKET_S, Health
from paymend.health.keys import channel_key, parse_key
from paymend.health.window import WindowStats

WINDOWS: tuple[tuple[str, float], ...] = (("1m", 60.0), ("5m", 300.0), ("30m", 1800.0))
BADGE_WINDOW_S = 300.0  # the badge judges the last five minutes
SERIES_S = 1800.0  # the chart: the last half hour...
SERIES_STEP_S = 30.0  # ...in half minutes
MAX_SCOPES = 12


@dataclass(frozen=True, slots=True)
class Figures:
    calls: int
    answered: int
    success_rate: float | None  # None: nothing answered
    error_rate: float | None
    p50_ms: float | None
    p99_ms: float | None

    @classmethod
    def of(cls, stats: WindowStats | None) -> Figures:
        s = stats or WindowStats()
        answered = s.answered
        return cls(
            s.calls,
            answered,
            s.success_rate if answered else None,
            s.error_rate if answered else None,
            s.latency_quantile(0.5),
            s.latency_quantile(0.99),
        )


def badge(rate: float | None, config: ConsoleConfig) -> str:
    """healthy above `healthy`, degraded above `degraded`, failing at or below it;
    idle when the channel answered nothing."""
    if rate is None:
        return "idle"
    if rate > config.healthy:
        return "healthy"
    if rate > config.degraded:
        return "degraded"
    return "failing"


@dataclass(frozen=True, slots=True)
class ScopeHealth:
    dimension: str
    value: str
    figures: Figures
    badge: str


@dataclass(frozen=True, slots=True)
class ChannelHealth:
    name: str
    badge: str
    circuit: str
    windows: list[tuple[str, Figures]]
    scopes: list[ScopeHealth]


@dataclass(frozen=True, slots=True)
class HealthPage:
    channels: list[ChannelHealth]
    controls: list[Control]
    incidents: list[Incident]
    config: ConsoleConfig
    across: list[ScopeHealth]  # banks and regions over every channel, worst first


def _window(book: Health, key: str, now: float, last_s: float) -> WindowStats | None:
    # the short window (one-second buckets) for the last minute; the long one beyond
    return book.stats(key, now, last_s) if last_s <= 60.0 else book.history(key, now, last_s)


def _judged(book: Health, key: str, now: float) -> Figures:
    return Figures.of(book.history(key, now, BADGE_WINDOW_S))


def _worst_first(scopes: list[ScopeHealth]) -> list[ScopeHealth]:
    scopes.sort(key=lambda s: (s.figures.success_rate or 0.0, -s.figures.calls))
    return scopes[:MAX_SCOPES]


def across_channels(runtime: Runtime, now: float) -> list[ScopeHealth]:
    """Each bank and region over every channel it called (the `*|bank=CMB` windows the
    bank-down playbook reads), last five minutes, worst first."""
    book, config = runtime.service.health, runtime.config.console
    found = []
    for key in list(book.keys()):
        if not key.startswith("*"):
            continue
        try:
            _, parts = parse_key(key)
        except ValueError:
            continue
        if len(parts) != 1:
            continue
        ((dimension, value),) = parts.items()
        figures = _judged(book, key, now)
        if dimension in ("bank", "region") and figures.calls:
            found.append(
                ScopeHealth(dimension, value, figures, badge(figures.success_rate, config))
            )
    return _worst_first(found)


def channel_health(runtime: Runtime, now: float) -> list[ChannelHealth]:
    book, config = runtime.service.health, runtime.config.console
    scoped: dict[str, list[tuple[str, str, str]]] = {}
    for key in list(book.keys()):
        if key.startswith("*"):
            continue  # a bank or region across channels: across_channels
        try:
            channel, parts = parse_key(key)
        except ValueError:
            continue
        if len(parts) == 1:
            ((dimension, value),) = parts.items()
            if dimension != "amount":
                scoped.setdefault(channel, []).append((key, dimension, value))
    found = []
    for name in runtime.providers:
        key = channel_key(name)
        windows = [(label, Figures.of(_window(book, key, now, s))) for label, s in WINDOWS]
        judged = _judged(book, key, now)
        scopes = []
        for skey, dimension, value in scoped.get(name, []):
            figures = _judged(book, skey, now)
            if figures.calls:
                scopes.append(
                    ScopeHealth(dimension, value, figures, badge(figures.success_rate, config))
                )
        found.append(
            ChannelHealth(
                name,
                badge(judged.success_rate, config),
                book.state(key).value,
                windows,
                _worst_first(scopes),
            )
        )
    return found


async def health_page(runtime: Runtime) -> HealthPage:
    now = runtime.clock.now().timestamp()  # health time: epoch seconds (engine/payments.py)
    active = await runtime.service.controls.active()
    incidents = await runtime.incidents.search(None, "open", 20)
    return HealthPage(
        channel_health(runtime, now),
        active,
        incidents,
        runtime.config.console,
        across_channels(runtime, now),
    )


def series(runtime: Runtime) -> dict[str, Any]:
    """The chart's data, uPlot's shape: one x axis (epoch seconds, each step's end) and,
    per channel, the success rate (None where nothing was answered) and the calls."""
    book = runtime.service.health
    now = runtime.clock.now().timestamp()
    end = now - now % HISTORY_BUCKET_S + HISTORY_BUCKET_S  # the current bucket included
    steps = int(SERIES_S // SERIES_STEP_S)
    xs = [end - (steps - 1 - i) * SERIES_STEP_S for i in range(steps)]
    half = HISTORY_BUCKET_S / 2  # bucket starts are whole multiples: each in one step
    channels: dict[str, dict[str, list[float | int | None]]] = {}
    for name in runtime.providers:
        key = channel_key(name)
        rates: list[float | int | None] = []
        calls: list[float | int | None] = []
        for x in xs:
            stats = book.history(key, now, now - x + SERIES_STEP_S + half, upto_s=now - x + half)
            s = stats or WindowStats()
            rates.append(round(s.success_rate * 100, 2) if s.answered else None)
            calls.append(s.calls)
        channels[name] = {"success": rates, "calls": calls}
    return {"x": xs, "channels": channels, "step_s": SERIES_STEP_S}
