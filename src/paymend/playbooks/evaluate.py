"""Watching the health book for the playbooks' signals, key by key.

Every tick (the worker's, once a second) each playbook looks at the keys of its scope:
a signal that has held for the trigger's `for` starts the playbook on that key; while
active, each firing pushes recovery back; once the signal has been clear for the
recovery's `after` and every circuit on the key is closed, the playbook recovers. The
evaluator only decides: the engine (engine/playbooks.py) carries out and undoes the
actions, so this stays pure and testable on a hand-made health book.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace

from paymend.health.book import Health
from paymend.health.breaker import BreakerState
from paymend.health.detectors import (
    DEFAULT_SETTINGS,
    DetectorSettings,
    Signal,
    error_spike,
    latency_spike,
    success_drop,
    traffic_drop,
)
from paymend.health.keys import parse_key
from paymend.health.window import WindowStats
from paymend.playbooks.model import PauseAction, Playbook

_SCOPE_DIMS = {
    "channel": (),
    "channel_method": ("method",),
    "channel_bank": ("bank",),
    "channel_region": ("region",),
    "bank": ("bank",),
    "region": ("region",),
}


@functools.lru_cache(maxsize=4096)  # asked for every playbook and key, every tick
def in_scope(key: str, scope: str) -> bool:
    channel, dims = parse_key(key)
    if (channel == "*") != (scope in ("bank", "region")):
        return False
    return tuple(dims) == _SCOPE_DIMS[scope]


def scope_of(key: str) -> dict[str, str]:
    """A key as the scope it names: {"channel": "sim_a", "bank": "CMB"}."""
    channel, dims = parse_key(key)
    return ({} if channel == "*" else {"channel": channel}) | dims


@dataclass(frozen=True, slots=True)
class Started:
    playbook: Playbook
    key: str
    signal: Signal
    at: float


@dataclass(frozen=True, slots=True)
class Recovered:
    playbook: Playbook
    key: str
    at: float
    why: str


@dataclass(slots=True)
class _Watch:
    first_seen: float | None = None  # the signal started firing (not yet acted on)
    active_since: float | None = None
    last_fired: float = 0.0


@dataclass(slots=True)
class Evaluator:
    playbooks: list[Playbook]
    detectors: DetectorSettings = DEFAULT_SETTINGS
    watches: dict[tuple[str, str], _Watch] = field(default_factory=dict)
    covered: set[str] = field(default_factory=set)  # scopes their channel's fault covers
    # each playbook's detector settings, worked out once (asked for every key, every tick)
    tuned: dict[int, tuple[Playbook, DetectorSettings]] = field(default_factory=dict)
    # whether a playbook watches a key, likewise (a key's scope never changes)
    watching: dict[tuple[int, str], tuple[Playbook, bool]] = field(default_factory=dict)

    def active(self) -> list[tuple[str, str]]:
        return [k for k, w in self.watches.items() if w.active_since is not None]

    def tick(self, health: Health, now: float) -> list[Started | Recovered]:
        keys = health.keys()
        changes: list[Started | Recovered] = []
        for p in self.playbooks:
            for key in keys:
                if not self._watches(p, key):
                    continue
                signal = self.signal(p, health, key, now)
                watch = self.watches.setdefault((p.name, key), _Watch())
                change = self._step(p, key, watch, signal, health, now)
                if change is not None:
                    changes.append(change)
        return changes

    def _step(
        self, p: Playbook, key: str, w: _Watch, signal: Signal, health: Health, now: float
    ) -> Started | Recovered | None:
        if signal.fired:
            w.last_fired = now
            if w.active_since is not None:
                return None
            if w.first_seen is None:
                w.first_seen = now
            if now - w.first_seen >= p.when.for_:
                w.active_since = now
                return Started(p, key, signal, now)
            return None
        w.first_seen = None
        if w.active_since is None:
            return None
        if any(isinstance(a, PauseAction) for a in p.do):
            probed = self._probed(p, key, w, health, now)
            if probed is not None:
                return probed
        if now - w.last_fired < p.recover.after:
            return None
        if health.state(key) is not BreakerState.CLOSED:
            return None  # its probes have not proved the channel yet
        w.active_since = None
        quiet = now - w.last_fired
        return Recovered(p, key, now, f"clear for {quiet:.0f}s and the circuit is closed")

    def _probed(
        self, p: Playbook, key: str, w: _Watch, health: Health, now: float
    ) -> Recovered | None:
        """A pause starves the signal it was set on: the scope's calls are then its
        probes (engine/controls.py lets one through each second). A failing probe says
        the scope still fails, and pushes recovery back; PROBES answered within the
        trigger's `recent`, none failing, end the pause at once instead of after
        `recover.after` of a silence the pause itself made."""
        probes = health.stats(key, now, p.when.recent) or WindowStats()
        if probes.failures:
            w.last_fired = now
            return None
        if probes.answered < PROBES or health.state(key) is not BreakerState.CLOSED:
            return None
        w.active_since = None
        return Recovered(p, key, now, f"{probes.answered} probes passed in {p.when.recent:.0f}s")

    def signal(self, p: Playbook, health: Health, key: str, now: float) -> Signal:
        t = p.when
        channel = parse_key(key)[0]
        if self._covered(health, key, channel, now):
            return Signal(t.signal, 0.0, None, 0, 1.0, False, f"covered by {channel}")
        if t.signal == "ops_alert":  # a failure ops must hear of, within `recent`
            flag = health.flagged(key)
            fired = flag is not None and now - flag[0] <= t.recent
            why = f"{flag[1]} on {key}" if flag is not None else "no alert"
            return Signal("ops_alert", float(fired), None, 0, 1.0, fired, why)
        if t.signal == "circuit_open":
            state = health.state(key)
            fired = state is not BreakerState.CLOSED
            return Signal("circuit_open", float(fired), None, 0, 1.0, fired, f"circuit {state}")
        recent = health.stats(key, now, t.recent) or WindowStats()
        baseline = health.history(key, now, t.baseline, upto_s=t.recent) or WindowStats()
        s = self._settings(p)
        if t.signal == "error_spike":
            return error_spike(recent, baseline, s)
        if t.signal == "success_drop":
            return success_drop(recent, baseline, s)
        if t.signal == "latency_spike":
            return latency_spike(recent, baseline, s)
        found = traffic_drop(recent, baseline, t.recent, t.baseline, s)
        if health.state(key) is not BreakerState.CLOSED:
            return replace(found, fired=False)  # our own rerouting, not the world's
        return found

    def _covered(self, health: Health, key: str, channel: str, now: float) -> bool:
        """Is this scope part of its channel's fault? While the channel's own circuit is
        open, yes (unless the scope fails clearly worse: a fault of its own); and a
        scope whose circuit opened then stays covered until that circuit closes, though
        the channel recovers first."""
        if channel in ("*", key):
            return False
        if health.state(channel) is not BreakerState.CLOSED:
            if _distinct(health, key, channel, now):
                return False
            self.covered.add(key)
            return True
        if key in self.covered and health.state(key) is not BreakerState.CLOSED:
            return True
        self.covered.discard(key)
        return False

    def _watches(self, p: Playbook, key: str) -> bool:
        found = self.watching.get((id(p), key))
        if found is None or found[0] is not p:
            watched = any(in_scope(key, scope) for scope in p.when.scopes)
            found = self.watching[(id(p), key)] = (p, watched)
        return found[1]

    def _settings(self, p: Playbook) -> DetectorSettings:
        """The detector defaults, with the trigger's own volume and threshold."""
        found = self.tuned.get(id(p))
        if found is None or found[0] is not p:
            found = self.tuned[id(p)] = (p, self._tune(p))
        return found[1]

    def _tune(self, p: Playbook) -> DetectorSettings:
        t, s = p.when, self.detectors
        n, x = t.min_calls, t.threshold
        if t.signal == "error_spike":
            s = replace(s, error_min_calls=n or s.error_min_calls)
            return replace(s, error_threshold=x or s.error_threshold)
        if t.signal == "success_drop":
            s = replace(s, success_min_calls=n or s.success_min_calls)
            return replace(s, success_min_drop=x or s.success_min_drop)
        if t.signal == "latency_spike":
            s = replace(s, latency_min_calls=n or s.latency_min_calls)
            return replace(s, latency_ratio=x or s.latency_ratio)
        s = replace(s, traffic_min_expected=float(n or s.traffic_min_expected))
        return replace(s, traffic_drop_ratio=x or s.traffic_drop_ratio)


PROBES = 5  # probes of a paused scope that must pass, none failing, to end the pause
DISTINCT_BY = 0.25  # a scope fails this much more than its sick channel: a second fault
DISTINCT_CALLS = 10


def _distinct(health: Health, key: str, channel: str, now: float) -> bool:
    """While a channel's own circuit is open, its banks, regions and methods fail with it
    and would each open an incident for the one fault; a scope that fails clearly worse
    than its channel (a bank timing out on a channel that is merely slow) is its own."""
    scope = health.stats(key, now, 60.0) or WindowStats()
    whole = health.stats(channel, now, 60.0) or WindowStats()
    return scope.answered >= DISTINCT_CALLS and scope.error_rate >= whole.error_rate + DISTINCT_BY
