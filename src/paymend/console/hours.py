"""The health page's longer view: each channel over the last hour, six hours and day,
from the attempts the database keeps (the health book holds half an hour). Counted as
the health book counts (engine/call_health.py): a decline that is the payer's (a
business failure in the catalogue) shows the channel works and is left out of its
rates; technical failures and unknowns count against it. Latency quantiles are exact.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Any

from paymend.console.health import Figures
from paymend.domain.payment import AttemptStatus
from paymend.engine.runtime import Runtime
from paymend.failures.catalogue import Catalogue
from paymend.store import calls as repo

HOURS: tuple[tuple[str, float], ...] = (("1h", 1.0), ("6h", 6.0), ("24h", 24.0))


def _quantile(ordered: list[int], q: float) -> float | None:
    if not ordered:
        return None
    return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))])


def figures(rows: list[Any], catalogue: Catalogue) -> Figures:
    """The figures of some calls (rows of store.calls.calls_between)."""
    success = failures = 0
    latencies = []
    for r in rows:
        if r.latency_ms is not None:
            latencies.append(r.latency_ms)
        if r.status in (AttemptStatus.SUCCEEDED, AttemptStatus.REVERSED):
            success += 1
        elif r.status == AttemptStatus.UNKNOWN:
            failures += 1
        elif r.status == AttemptStatus.FAILED:
            code = r.unified_code
            entry = catalogue[code] if code in catalogue else catalogue[catalogue.DEFAULT]
            failures += 1 if entry.health else 0
    answered = success + failures
    latencies.sort()
    return Figures(
        len(rows),
        answered,
        success / answered if answered else None,
        failures / answered if answered else None,
        _quantile(latencies, 0.5),
        _quantile(latencies, 0.99),
    )


async def channel_hours(runtime: Runtime) -> dict[str, list[tuple[str, Figures]]]:
    """Per configured channel, its figures over each of HOURS (one read of the day)."""
    now = runtime.clock.now()
    longest = max(h for _, h in HOURS)
    until = now + timedelta(microseconds=1)  # [since, until): a call made this instant too
    rows = await runtime.store.run(
        lambda conn: repo.calls_between(conn, now - timedelta(hours=longest), until)
    )
    by_channel: dict[str, list[Any]] = defaultdict(list)
    for r in rows:
        by_channel[r.provider].append(r)
    catalogue = runtime.service.classifier.catalogue
    found = {}
    for name in runtime.providers:
        calls = by_channel.get(name, [])
        found[name] = [
            (
                label,
                figures([r for r in calls if r.created_at >= now - timedelta(hours=h)], catalogue),
            )
            for label, h in HOURS
        ]
    return found
