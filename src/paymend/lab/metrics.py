"""The figures of a lab run, from the store and from the providers' own ledger.

Money figures come from the provider's side (what was charged and refunded), never from
paymend's opinion of itself: a duplicate charge or a customer charged but told "failed"
shows up here even if paymend's records missed it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any

import sqlalchemy as sa

from paymend.domain.failure import Kind
from paymend.failures.classify import default_classifier
from paymend.lab.oracle import hits, recoverable
from paymend.lab.runner import Run
from paymend.store.tables import attempts, payments

HEADLINE = (
    "payments",
    "success_rate",
    "oracle_success_rate",
    "naive_success_rate",
    "recovery_ratio",
    "duplicate_charges",
    "charged_but_failed",
    "lost_payments",
    "unknown_unresolved",
    "processing_at_end",
    "p50_latency_ms",
    "p99_latency_ms",
    "retries_per_payment",
    "avg_cost_bps",
    "wall_s",
)
"""The figures a person looks at first (the compare table, the report's summary)."""


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank quantile `q` of a non-empty list (the JSON and the plots share it)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def summarize(run: Run, naive: Run | None = None) -> dict[str, Any]:
    scenario = run.scenario
    engine = sa.create_engine(f"sqlite:///{run.db_path}")
    with engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(sa.select(payments))}
        tried = conn.execute(
            sa.select(attempts.c.payment_id, attempts.c.status, attempts.c.provider)
        )
        attempt_rows = list(tried)
    engine.dispose()
    catalogue = default_classifier().catalogue
    status = Counter(r.status for r in rows.values())
    n = len(run.arrivals)
    succeeded = status["succeeded"] + status["partially_refunded"] + status["refunded"]
    oracle = sum(1 for a in run.arrivals if recoverable(scenario, a))
    ledger = run.ledger
    duplicates = charged_but_failed = 0
    for pid, row in rows.items():
        open_charges = [c for c in ledger.charged(pid) if c.refunded < c.amount.minor]
        if len(open_charges) > 1:
            duplicates += 1
        if row.status in ("failed", "canceled") and ledger.net_charged(pid) > 0:
            charged_but_failed += 1
    known = set(rows)
    lost = sum(1 for a in run.arrivals if a.payment_id is None) + sum(
        1 for c in ledger.all_charges() if c.payment_id not in known
    )
    unresolved = sum(1 for a in attempt_rows if a.status in ("unknown", "pending"))
    latencies = [a.latency_s * 1000 for a in run.arrivals if a.latency_s is not None]
    succeeded_channel = {a.payment_id: a.provider for a in attempt_rows if a.status == "succeeded"}
    costs = [scenario.channels[ch].cost_bps for ch in succeeded_channel.values()]
    messages = Counter(r.failure_code for r in rows.values() if r.status == "failed")
    faults = []
    by_payment = {a.payment_id: a for a in run.arrivals}
    for fault in scenario.faults:
        into = sum(
            1
            for p in run.providers.values()
            for c in p.calls
            if fault.kind != "payer"
            and fault.at <= c.t < fault.end
            and fault.channel in (None, c.channel)
            and fault.method in (None, c.method)
            and fault.bank in (None, c.bank)
            and fault.region in (None, c.region)
        )
        technical = 0
        for pid, row in rows.items():
            arrival = by_payment.get(pid)
            if arrival is None or not (fault.at <= arrival.t < fault.end):
                continue
            if fault.kind != "payer" and not any(
                hits(fault, ch, arrival) for ch in scenario.channels
            ):
                continue
            code = row.failure_code
            if (
                row.status == "failed"
                and code in catalogue
                and catalogue[code].kind is Kind.TECHNICAL
            ):
                technical += 1
        faults.append(
            {
                "kind": fault.kind,
                "at_s": fault.at,
                "for_s": fault.for_,
                "scope": {k: getattr(fault, k) for k in ("channel", "method", "bank", "region")},
                "attempts_into_fault": into,
                "customer_failures": technical,
                **_detection(run, fault),
                **_diagnosis(run, fault),
            }
        )
    success_rate = succeeded / n if n else 0.0
    oracle_rate = oracle / n if n else 0.0
    naive_rate = None
    if naive is not None:
        naive_rate = summarize(naive)["success_rate"]
    elif run.policy == "naive":
        naive_rate = success_rate
    return {
        "scenario": scenario.name,
        "policy": run.policy,
        "seed": scenario.seed,
        "payments": n,
        "succeeded": succeeded,
        "failed": status["failed"],
        "requires_action": status["requires_action"],
        "canceled": status["canceled"],
        "processing_at_end": status["processing"],
        "success_rate": round(success_rate, 4),
        "oracle_success_rate": round(oracle_rate, 4),
        "naive_success_rate": None if naive_rate is None else round(naive_rate, 4),
        "recovery_ratio": round(success_rate / oracle_rate, 4) if oracle_rate else None,
        "duplicate_charges": duplicates,
        "charged_but_failed": charged_but_failed,
        "lost_payments": lost,
        "unknown_unresolved": unresolved,
        "p50_latency_ms": round(percentile(latencies, 0.5), 1) if latencies else None,
        "p99_latency_ms": round(percentile(latencies, 0.99), 1) if latencies else None,
        "retries_per_payment": round((len(attempt_rows) - len(rows)) / n, 4) if n else 0.0,
        "avg_cost_bps": round(sum(costs) / len(costs), 2) if costs else None,
        "messages": dict(sorted(messages.items(), key=lambda kv: (-kv[1], str(kv[0])))),
        "faults": faults,
        "false_actions": _false_actions(run),
        "wall_s": round(run.wall_s, 2),
    }


GRACE_S = 30.0  # an action this soon after a fault ends still belongs to it
DIAGNOSIS_WINDOW_S = 30.0  # the fault's first seconds, against the minute before it


def _diagnosis(run: Run, fault: Any) -> dict[str, Any]:
    """The root-cause search over the calls around the fault's onset, and whether its
    first answer names the fault's scope."""
    from paymend.health.diagnosis import Observation, diagnose

    if fault.kind == "payer":
        return {"diagnosis": [], "diagnosis_correct": None}
    calls = [c for p in run.providers.values() for c in p.calls]

    def observed(lo: float, hi: float) -> list[Observation]:
        return [
            Observation(
                {
                    "channel": c.channel,
                    "method": c.method,
                    "bank": c.bank,
                    "region": c.region,
                    "code": c.code,
                },
                c.code is not None,
            )
            for c in calls
            if lo <= c.t < hi
        ]

    suspects = diagnose(
        observed(fault.at - 60.0, fault.at),
        observed(fault.at, min(fault.end, fault.at + DIAGNOSIS_WINDOW_S)),
    )
    scope = {(k, getattr(fault, k)) for k in ("channel", "method", "bank", "region")}
    scope = {item for item in scope if item[1] is not None}
    top = [
        {
            "dimension": s.dimension,
            "value": s.value,
            "explanatory_power": round(s.explanatory_power, 3),
        }
        for s in suspects[:3]
    ]
    correct = bool(suspects) and (suspects[0].dimension, suspects[0].value) in scope
    return {"diagnosis": top, "diagnosis_correct": correct if scope else None}


def _offsets(run: Run) -> list[Any]:
    """Breaker transitions with their time as seconds into the scenario."""
    return [replace(t, at=t.at - run.epoch_s) for t in run.transitions]


def _opens(run: Run) -> list[Any]:
    from paymend.health.breaker import BreakerState

    return [t for t in _offsets(run) if t.after is BreakerState.OPEN]


def _detection(run: Run, fault: Any) -> dict[str, float | None]:
    """Onset to the first circuit opened on the fault's channel; fault end to that
    channel's circuit closed again (traffic restored)."""
    from paymend.health.breaker import BreakerState

    if fault.kind == "payer" or fault.channel is None:
        return {"detect_s": None, "recover_s": None}
    opened = next(
        (t for t in _opens(run) if t.key == fault.channel and fault.at <= t.at < fault.end),
        None,
    )
    closed = next(
        (
            t
            for t in _offsets(run)
            if t.key == fault.channel and t.after is BreakerState.CLOSED and t.at >= fault.end
        ),
        None,
    )
    return {
        "detect_s": None if opened is None else round(opened.at - fault.at, 3),
        "recover_s": None if opened is None or closed is None else round(closed.at - fault.end, 3),
    }


def _false_actions(run: Run) -> int:
    """Circuits opened outside every fault that touches their channel."""
    count = 0
    for t in _opens(run):
        inside = any(
            f.kind != "payer" and f.channel in (None, t.key) and f.at <= t.at <= f.end + GRACE_S
            for f in run.scenario.faults
        )
        count += not inside
    return count
