"""The figures of a lab run, from its records and from the providers' own ledger.

Money figures come from the provider's side (what was charged and refunded), never from
paymend's opinion of itself: a duplicate charge or a customer charged but told "failed"
shows up here even if paymend's records missed it. The oracle and the naive checkout are
replayed from the run's own draws (lab/oracle.py, lab/naive.py); `regret` counts the
payments the oracle could have saved and paymend did not, each with its cause
(lab/regret.py).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from paymend.domain.failure import Kind
from paymend.failures.classify import default_classifier
from paymend.lab.arrivals import Arrival
from paymend.lab.naive import NaiveCheckout, NaiveResult
from paymend.lab.oracle import Oracle, Verdict
from paymend.lab.regret import SUCCESS, cause_of, fault_hits
from paymend.lab.runner import CHECKOUT_DEADLINE_S, Run, limits_for
from paymend.providers.simulator import ChargeState

HEADLINE = (
    "payments",
    "success_rate",
    "oracle_success_rate",
    "naive_success_rate",
    "recovery_ratio",
    "regret",
    "duplicate_charges",
    "charged_but_failed",
    "lost_payments",
    "unknown_unresolved",
    "processing_at_end",
    "false_actions",
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


def verdicts(run: Run) -> list[Verdict]:
    """The oracle's verdict for every arrival, in order (replayed once per run, beside
    it where it could: lab/foresight.py)."""
    if run.verdicts is None:
        oracle = Oracle(run.scenario, limits_for(run.scenario))
        run.verdicts = [oracle.verdict(a) for a in run.arrivals]
    return run.verdicts


def naive_outcomes(run: Run) -> list[NaiveResult]:
    """The naive checkout's outcome for every arrival, in order (likewise)."""
    if run.naive is None:
        naive = NaiveCheckout(run.scenario, CHECKOUT_DEADLINE_S)
        run.naive = [naive.outcome(a) for a in run.arrivals]
    return run.naive


def succeeded(run: Run, a: Arrival) -> bool:
    record = run.records.payments.get(a.payment_id or "")
    return record is not None and record.status in SUCCESS


def summarize(run: Run) -> dict[str, Any]:
    scenario = run.scenario
    rows = run.records.payments
    tried = run.records.attempts
    catalogue = default_classifier().catalogue
    attacks = {a.payment_id for a in run.fraud.arrivals} if run.fraud else set()
    again = run.journeys.payment_ids() if run.journeys else set()  # lab/journeys.py
    status = Counter(r.status for pid, r in rows.items() if pid not in attacks | again)
    n = len(run.arrivals)
    wins = sum(status[s] for s in SUCCESS)
    judged = verdicts(run)
    oracle = sum(v.possible for v in judged)
    naive = naive_outcomes(run)
    ledger = run.ledger
    charged: dict[str, list[Any]] = defaultdict(list)  # one pass, not one scan per payment
    for c in ledger.all_charges():
        if c.state is ChargeState.CHARGED:
            charged[c.payment_id].append(c)
    duplicates = charged_but_failed = 0
    for pid, row in rows.items():
        mine = charged.get(pid, [])
        if sum(1 for c in mine if c.refunded < c.amount.minor) > 1:
            duplicates += 1
        net = sum(c.amount.minor - c.refunded for c in mine)
        if row.status in ("failed", "canceled") and net > 0:
            charged_but_failed += 1
    lost = sum(1 for a in run.arrivals if a.payment_id is None) + sum(
        1 for c in ledger.all_charges() if c.payment_id not in rows
    )
    attempt_rows = run.records.all_attempts()
    unresolved = sum(1 for _, a in attempt_rows if a.status in ("unknown", "pending"))
    latencies = [a.latency_s * 1000 for a in run.arrivals if a.latency_s is not None]
    succeeded_channel = {pid: a.provider for pid, a in attempt_rows if a.status == "succeeded"}
    costs = [scenario.channels[ch].cost_bps for ch in succeeded_channel.values()]
    messages = Counter(
        r.failure_code for pid, r in rows.items() if r.status == "failed" and pid not in again
    )
    limits = limits_for(scenario)
    regret: list[tuple[Arrival, str]] = []
    violations = []
    for a, v in zip(run.arrivals, judged, strict=True):
        won = succeeded(run, a)
        if v.possible and not won:
            record = rows.get(a.payment_id or "")
            regret.append((a, cause_of(v, record, tried.get(a.payment_id or "", []), limits)))
        elif won and not v.possible:
            violations.append(a.n)
    faults = []
    done = actions(run)
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
        technical = unavoidable = 0
        for a, v in zip(run.arrivals, judged, strict=True):
            if not fault_hits(scenario, fault, a):
                continue
            found = rows.get(a.payment_id or "")
            if found is None or found.status != "failed" or found.failure_code is None:
                continue
            code = found.failure_code
            if code in catalogue and catalogue[code].kind is Kind.TECHNICAL:
                if v.possible:
                    technical += 1
                else:  # no plan within the limits could have saved it
                    unavoidable += 1
        regretted = Counter(c for a, c in regret if fault_hits(scenario, fault, a))
        faults.append(
            {
                "kind": fault.kind,
                "at_s": fault.at,
                "for_s": fault.for_,
                "scope": {k: getattr(fault, k) for k in ("channel", "method", "bank", "region")},
                "attempts_into_fault": into,
                "customer_failures": technical,
                "customer_failures_unavoidable": unavoidable,
                "regret": sum(regretted.values()),
                "regret_by_cause": _ordered(regretted),
                **_detection(fault, done),
                **_diagnosis(fault, done),
            }
        )
    outside = Counter(
        c for a, c in regret if not any(fault_hits(scenario, f, a) for f in scenario.faults)
    )
    false = _false_actions(run, done)
    success_rate = wins / n if n else 0.0
    oracle_rate = oracle / n if n else 0.0
    naive_rate = sum(o.succeeded for o in naive) / n if n else 0.0
    return {
        "scenario": scenario.name,
        "policy": run.policy,
        "seed": scenario.seed,
        "payments": n,
        "succeeded": wins,
        "failed": status["failed"],
        "requires_action": status["requires_action"],
        "held": status["held"],
        "canceled": status["canceled"],
        "processing_at_end": status["processing"],
        "success_rate": round(success_rate, 4),
        "oracle_success_rate": round(oracle_rate, 4),
        "naive_success_rate": round(naive_rate, 4),
        "naive_charged_but_failed": sum(o.charged_but_failed for o in naive),
        "recovery_ratio": round(success_rate / oracle_rate, 4) if oracle_rate else None,
        "regret": len(regret),
        "regret_by_cause": _ordered(Counter(c for _, c in regret)),
        "regret_outside_faults": _ordered(outside),
        "oracle_violations": len(violations),
        "oracle_violation_list": violations[:20],
        "duplicate_charges": duplicates,
        "charged_but_failed": charged_but_failed,
        "lost_payments": lost,
        "unknown_unresolved": unresolved,
        "p50_latency_ms": round(percentile(latencies, 0.5), 1) if latencies else None,
        "p99_latency_ms": round(percentile(latencies, 0.99), 1) if latencies else None,
        "retries_per_payment": round(
            (sum(1 for pid, _ in attempt_rows if pid not in again) - len(set(tried) - again)) / n,
            4,
        )
        if n
        else 0.0,
        "avg_cost_bps": round(sum(costs) / len(costs), 2) if costs else None,
        "messages": dict(sorted(messages.items(), key=lambda kv: (-kv[1], str(kv[0])))),
        "faults": faults,
        "false_actions": len(false),
        "false_action_list": [
            {"at_s": round(a.at, 1), "what": a.what, "scope": a.scope} for a in false[:20]
        ],
        **run.notices,  # lab/notices.py: when the scenario tells customers
        **(
            run.fraud.figures(run.arrivals, run.records, ledger, lambda a: succeeded(run, a))
            if run.fraud
            else {}
        ),
        **(
            run.journeys.figures(run.arrivals, lambda pid: _status_of(rows, pid))
            if run.journeys
            else {}
        ),
        "wall_s": round(run.wall_s, 2),
    }


def _status_of(rows: dict[str, Any], payment_id: str | None) -> str | None:
    found = rows.get(payment_id or "")
    return None if found is None else str(found.status)


def _ordered(counts: Counter[str]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


GRACE_S = 30.0  # an action this soon after a fault ends still belongs to it
DIMS = ("channel", "method", "bank", "region")


@dataclass(frozen=True, slots=True)
class Action:
    """An automatic action or incident, as seconds into the scenario and the scope it
    acted on ({"channel": "sim_a", "bank": "CMB"})."""

    at: float
    what: str  # circuit_open | circuit_closed | playbook | playbook_recovered | incident
    scope: dict[str, str]
    diagnosis: list[dict[str, Any]] = field(default_factory=list)


def _fault_scope(fault: Any) -> dict[str, str]:
    return {d: getattr(fault, d) for d in DIMS if getattr(fault, d) is not None}


def _within(scope: dict[str, str], fault: Any) -> bool:
    """The action is on the fault: nothing in its scope contradicts the fault's, and it
    names part of it (the channel of a channel x region fault, a channel x bank of a
    bank-wide one)."""
    f = _fault_scope(fault)
    return _compatible(scope, fault) and any(f.get(d) == v for d, v in scope.items())


def _compatible(scope: dict[str, str], fault: Any) -> bool:
    """Nothing in the action's scope contradicts the fault's."""
    f = _fault_scope(fault)
    return all(f.get(d, v) == v for d, v in scope.items() if d in DIMS)


def actions(run: Run) -> list[Action]:
    """Breaker transitions, playbook starts and incidents of a run, in time order."""
    from paymend.health.breaker import BreakerState
    from paymend.playbooks.evaluate import scope_of

    found = [
        Action(
            t.at - run.epoch_s,
            "circuit_open" if t.after is BreakerState.OPEN else "circuit_closed",
            scope_of(t.key),
        )
        for t in run.transitions
        if t.after is BreakerState.CLOSED
        or (t.after is BreakerState.OPEN and t.before is BreakerState.CLOSED)
    ]
    names = {"playbook.start": "playbook", "playbook.recover": "playbook_recovered"}
    for r in run.records.playbooks:
        found.append(Action(r.at, names[r.action], scope_of(r.target or "")))
    for i in run.records.incidents:
        found.append(Action(i.at, "incident", dict(i.scope), list(i.diagnosis)))
    return sorted(found, key=lambda a: a.at)


def _diagnosis(fault: Any, done: list[Action]) -> dict[str, Any]:
    """The diagnosis of the incident opened for the fault, and whether its first entry
    is the fault's scope: all of it and nothing else (a channel x region fault is
    neither the channel nor the region)."""
    if fault.kind == "payer":
        return {"diagnosis": [], "diagnosis_correct": None}
    opened = [
        a
        for a in done
        if a.what == "incident"
        and fault.at <= a.at <= fault.end + GRACE_S
        and _compatible(a.scope, fault)
    ]
    opened.sort(key=lambda a: (not _within(a.scope, fault), a.at))
    if not opened:
        return {"diagnosis": [], "diagnosis_correct": False}
    top = opened[0].diagnosis[:3]
    correct = bool(top) and top[0]["scope"] == _fault_scope(fault)
    keep = ("scope", "symptom", "explanatory_power")
    return {"diagnosis": [{k: d.get(k) for k in keep} for d in top], "diagnosis_correct": correct}


def _detection(fault: Any, done: list[Action]) -> dict[str, float | None]:
    """Onset to the first automatic action on the fault's scope; fault end to the last of
    its actions undone (each circuit closed, each playbook recovered after it last
    started; 0 when all were undone before the fault ended, as a refreshed credential)."""
    if fault.kind == "payer":
        return {"detect_s": None, "recover_s": None}
    acted = [
        a
        for a in done
        if a.what in ("circuit_open", "playbook")
        and fault.at <= a.at < fault.end
        and _within(a.scope, fault)
    ]
    if not acted:
        return {"detect_s": None, "recover_s": None}
    undo = {"circuit_open": "circuit_closed", "playbook": "playbook_recovered"}
    last: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for a in acted:  # each circuit or playbook: its last start within the fault
        last[(undo[a.what], tuple(sorted(a.scope.items())))] = a.at
    closed_at = []
    for (what, scope), opened in last.items():
        closing = next(
            (
                a.at
                for a in done
                if a.what == what and a.at >= opened and tuple(sorted(a.scope.items())) == scope
            ),
            None,
        )
        if closing is None:
            break  # still open when the run ended
        closed_at.append(closing)
    recover = None
    if closed_at and len(closed_at) == len(last):
        recover = max(0.0, max(closed_at) - fault.end)
    return {
        "detect_s": round(acted[0].at - fault.at, 3),
        "recover_s": None if recover is None else round(recover, 3),
    }


def _false_actions(run: Run, done: list[Action]) -> list[Action]:
    """Automatic actions and incidents outside every fault they could belong to."""
    found = []
    for a in done:
        if a.what in ("circuit_closed", "playbook_recovered"):
            continue
        inside = any(
            f.kind != "payer" and f.at <= a.at <= f.end + GRACE_S and _compatible(a.scope, f)
            for f in run.scenario.faults
        )
        if not inside:
            found.append(a)
    return found
