"""The health book: one breaker per channel, in this process's memory, and the log of
every transition (what the lab measures detection and recovery from, and ops read).

Sharing breakers across processes through Redis comes next behind this same interface.
"""

from __future__ import annotations

from paymend.health.breaker import Breaker, BreakerSettings, BreakerState, Transition
from paymend.health.outcomes import Outcome
from paymend.observability import get_logger

log = get_logger("paymend.health")


class HealthBook:
    def __init__(self, settings: BreakerSettings | None = None) -> None:
        self.settings = settings or BreakerSettings()
        self.breakers: dict[str, Breaker] = {}
        self.transitions: list[Transition] = []

    def breaker(self, key: str) -> Breaker:
        found = self.breakers.get(key)
        if found is None:
            found = self.breakers[key] = Breaker(key, self.settings)
        return found

    def allow(self, key: str, now: float) -> bool:
        allowed, moved = self.breaker(key).allow(now)
        self._note(moved)
        return allowed

    def record(self, key: str, now: float, outcome: Outcome) -> None:
        self._note(self.breaker(key).record(now, outcome))

    def state(self, key: str) -> BreakerState:
        return self.breaker(key).state

    def _note(self, moved: Transition | None) -> None:
        if moved is None:
            return
        self.transitions.append(moved)
        log.warning(
            "breaker",
            key=moved.key,
            before=moved.before.value,
            after=moved.after.value,
            why=moved.why,
            at=round(moved.at, 3),
        )
