"""Carrying out the playbooks: actions when a signal starts, undoing them on recovery,
and the incident each one opens, with its diagnosis and the payments it touched.

The evaluator (playbooks/evaluate.py) decides; this runs in the worker and acts through
the same parts an operator uses: breakers, ops controls (audit-logged, actor
`playbook:<name>`), the incident record. Every start and recovery is audit-logged with
the signal's values, so ops can tell what the machine did and why.
"""

from __future__ import annotations

import math
import os
import socket
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from paymend.domain.control import ControlKind
from paymend.domain.errors import ControlExists, InvalidInput
from paymend.domain.failure import Kind
from paymend.domain.incident import Incident, IncidentEventKind
from paymend.domain.payment import AttemptStatus
from paymend.engine.controls import PLAYBOOK, KnownScopes
from paymend.engine.ops_events import OpsEventKind, raise_event
from paymend.engine.payments import PaymentService
from paymend.failures.classify import default_classifier
from paymend.health.diagnosis import Observation, diagnose, rose
from paymend.health.keys import parse_key
from paymend.observability import OPS_ALERTS, get_logger
from paymend.playbooks.evaluate import Evaluator, Recovered, Started, scope_of
from paymend.playbooks.model import Hold, HoldAction, Pause, PauseAction, Playbook
from paymend.store import calls as call_repo
from paymend.store import controls as audit_repo
from paymend.store import incidents as incident_repo
from paymend.store.calls import Call
from paymend.store.database import Connection

log = get_logger("paymend.playbooks")
BASELINE_S = 120.0  # diagnosis compares two minutes of calls before the signal...
LOOKBACK_S = 1800.0  # (while no incident was open, looking back at most half an hour)
MIN_QUIET_S = 30.0  # (or, when too little of that time was quiet, just before the signal)
SETTLE_S = 60.0  # (nor in the minute after one resolved: a fault can outlast its signal)
LEAD_S = 10.0  # ...with the calls from shortly before it fired
DIAGNOSE_FOR_S = 30.0  # and refines it while the incident is young (not longer: a later
# fault elsewhere must not blur this one's picture)
REFRESH_S = 10.0
PAUSE, HOLD = ControlKind.PAUSE, ControlKind.HOLD
SIGNAL, ACTION = IncidentEventKind.SIGNAL, IncidentEventKind.ACTION
RECOVERY = IncidentEventKind.RECOVERY


@dataclass(slots=True)
class _Run:
    """What one playbook did on one key, to undo and to report."""

    started_at: float
    slow_ms: float | None  # latency incidents: a call slower than this was affected
    incident_id: str | None = None
    control_ids: list[str] = field(default_factory=list)
    refreshed_at: float = 0.0
    # the calls before the signal, read at the first refresh and kept while it is young
    # (`_refresh`), and how the diagnosis weighs them (by `hung`)
    base: list[Call] | None = None
    weighed: dict[bool, list[Observation]] = field(default_factory=dict)


class PlaybookRunner:
    def __init__(self, service: PaymentService, playbooks: list[Playbook]) -> None:
        self.service = service
        self.evaluator = Evaluator(playbooks)
        self.runs: dict[tuple[str, str], _Run] = {}
        self._consumer = f"{socket.gethostname()}-{os.getpid()}"  # as a Redis stream reader
        catalogue = default_classifier().catalogue
        self._technical = frozenset(
            code for code in catalogue.codes() if catalogue[code].kind is Kind.TECHNICAL
        )

    async def tick(self) -> None:
        now = self.service._health_now()
        await self._audit_breakers()
        for change in self.evaluator.tick(self.service.health, now):
            if isinstance(change, Started):
                await self._start(change)
            else:
                await self._recover(change)
        for (name, key), run in self.runs.items():
            young = now - run.started_at <= DIAGNOSE_FOR_S + REFRESH_S
            if run.incident_id is not None and young and now - run.refreshed_at >= REFRESH_S:
                await self._refresh(name, key, run, now)
            elif not young and run.base is not None:
                run.base, run.weighed = None, {}  # refreshed no more until it recovers

    async def _audit_breakers(self) -> None:
        """Breakers move in the payment path, where nothing may wait on the database;
        their transitions (from every process, with Redis) reach the audit log here, on
        the worker's next sweep, and are acknowledged once written."""
        taken = self.service.health.unaudited(self._consumer)
        if not taken:
            return

        def write(conn: Connection) -> None:
            for _, t in taken:
                action = f"breaker.{t.after.value}"
                details = {"before": t.before.value, "after": t.after.value}
                audit_repo.audit(conn, self._at(t.at), "breaker", action, t.key, t.why, details)

        await self.service.store.run(write)
        self.service.health.audited([i for i, _ in taken])

    async def _start(self, s: Started) -> None:
        p, key, signal = s.playbook, s.key, s.signal
        actor = f"{PLAYBOOK}{p.name}"
        reason = f"{p.name}: {signal.why}"
        slow = signal.baseline * 2 if signal.name == "latency_spike" and signal.baseline else None
        run = self.runs[(p.name, key)] = _Run(s.at, slow)
        scope = scope_of(key)
        done: list[str] = []
        for action in p.do:
            if action == "open_circuit":
                self.service.health.force_open(key, s.at, reason)
                done.append(f"opened the circuit of {key}")
            elif isinstance(action, PauseAction):  # an ops control, undone later
                pause = action.pause
                what = f"{pause.what} {scope[pause.what]}{_for(pause.method)}"
                did = await self._control(run, actor, reason, PAUSE, pause.what, scope, pause)
                done.append(f"paused {what}" if did is None else f"{what}: {did}")
            elif isinstance(action, HoldAction):  # one control per currency, undone later
                hold = action.hold
                for currency, above in hold.above.items():
                    what = f"{hold.what} {scope[hold.what]}{_for(hold.method)}"
                    did = await self._control(
                        run, actor, reason, HOLD, hold.what, scope, hold, above, currency
                    )
                    held = f"holding {what} above {above} {currency}"
                    done.append(held if did is None else f"{what} ({currency}): {did}")
            elif action == "alert":
                log.warning("ops_alert", playbook=p.name, key=key, severity=p.severity, why=reason)
                OPS_ALERTS.labels(p.name, p.severity).inc()
                done.append("alerted ops")
        at = self._at(s.at)
        details: dict[str, Any] = {
            "key": key,
            "signal": signal.name,
            "value": signal.value,
            "baseline": signal.baseline,
            "calls": signal.calls,
            "p_value": signal.p_value,
            "actions": done,
        }
        opens = "open_incident" in p.do
        ids = self.service.ids

        def write(conn: Connection) -> str | None:
            audit_repo.audit(conn, at, actor, "playbook.start", key, reason, details)
            if not opens:
                if "alert" in p.do:  # no incident to page about: page the alert itself
                    raise_event(
                        conn,
                        at,
                        OpsEventKind.PLAYBOOK_ALERT,
                        f"{p.name}:{key}:{at:%Y-%m-%dT%H:%M}",  # one start a minute
                        f"{p.description} ({key})",
                        severity=p.severity,
                        playbook=p.name,
                        scope=scope,
                        why=signal.why,
                        actions="; ".join(done),
                    )
                return None
            found = incident_repo.open_for(conn, p.name, key)
            if found is None:
                where = ", ".join(f"{k}={v}" for k, v in scope.items())
                found = incident_repo.open_incident(
                    conn,
                    Incident.new(
                        ids.new("inc"),
                        p.name,
                        f"{p.description} ({where})",
                        p.severity,
                        scope,
                        key,
                        at,
                    ),
                )
            incident_repo.add_event(conn, found.id, at, SIGNAL, signal.why, details)
            for action in done:
                incident_repo.add_event(conn, found.id, at, ACTION, action, {"actor": actor})
            return found.id

        run.incident_id = await self.service.store.run(write)
        log.warning("playbook_started", playbook=p.name, key=key, why=signal.why, actions=done)
        if run.incident_id is not None:
            await self._refresh(p.name, key, run, s.at)

    async def _control(
        self,
        run: _Run,
        actor: str,
        reason: str,
        kind: ControlKind,
        what: str,
        scope: dict[str, str],
        spec: Pause | Hold,
        above: int | None = None,
        currency: str | None = None,
    ) -> str | None:
        """Set a pause or hold for the run; None when set, else what happened instead.

        An identical control already active is this playbook's own when it set it before
        a restart (the run adopts it and ends it on recovery), else someone else's (an
        operator's, another playbook's): it is left to them, and stays when this one
        recovers. The values come from live traffic, so only their shape is checked."""
        service = self.service
        known = KnownScopes(frozenset(service.providers))
        try:
            control = await service.controls.set(
                kind, what, scope[what], spec.method, reason, actor, known, above, currency
            )
        except ControlExists as exists:
            found = exists.existing
            if found is not None and found.set_by == actor:
                run.control_ids.append(found.id)
                return f"kept its control {found.id} from before"
            by = f"{found.id}, set by {found.set_by}" if found else "ended meanwhile"
            log.info("playbook_control_exists", actor=actor, kind=kind, control=by)
            return f"already {'paused' if kind is PAUSE else 'held'} ({by})"
        except InvalidInput as refused:  # e.g. a bank name no control may carry
            log.warning("playbook_control_refused", actor=actor, why=refused.message)
            return f"not {'paused' if kind is PAUSE else 'held'}: {refused.message}"
        run.control_ids.append(control.id)
        return None

    async def _recover(self, r: Recovered) -> None:
        p, key = r.playbook, r.key
        run = self.runs.pop((p.name, key), None)
        actor = f"{PLAYBOOK}{p.name}"
        undone: list[str] = []
        for control_id in run.control_ids if run else []:
            await self.service.controls.end(control_id, f"{p.name} recovered: {r.why}", actor)
            undone.append(f"ended control {control_id}")
        if run is not None and run.incident_id is not None:
            await self._refresh(p.name, key, run, r.at)
        at = self._at(r.at)
        incident_id = run.incident_id if run else None

        def write(conn: Connection) -> None:
            details = {"key": key, "undone": undone, "incident": incident_id}
            audit_repo.audit(conn, at, actor, "playbook.recover", key, r.why, details)
            if incident_id is not None:
                incident_repo.add_event(conn, incident_id, at, RECOVERY, r.why, details)
                incident_repo.resolve(conn, incident_id, at, f"{p.name} recovered: {r.why}")

        await self.service.store.run(write)
        log.info("playbook_recovered", playbook=p.name, key=key, why=r.why, undone=undone)

    async def _refresh(self, name: str, key: str, run: _Run, now: float) -> None:
        """Diagnose where the failures concentrate, and count the payments they hit."""
        run.refreshed_at = now
        incident_id = run.incident_id
        if incident_id is None:
            return
        start = run.started_at
        split = start - LEAD_S
        until = self._at(min(now, start + DIAGNOSE_FOR_S) + 0.001)

        def read(conn: Connection) -> tuple[list[Call], list[Call]]:
            base = run.base if run.base is not None else self._baseline(conn, split)
            return base, call_repo.calls_between(conn, self._at(split), until)

        base_rows, rows = await self.service.store.run(read)
        if run.base is not base_rows:
            run.base, run.weighed = base_rows, {}
        read_at = self.service.clock.now()  # one clock read for every call's time
        base = self._weigh_base(run, read_at, hung=False)
        anomaly = self._observe(rows, run, read_at)
        channel, dims = parse_key(key)
        around = dict(dims) if channel == "*" else {"channel": channel, **dims}
        if run.slow_ms is None and not rose(base, anomaly, around):
            # its own calls show no rise as their outcomes settled: they hung and were
            # charged after all (a channel slowed past the checkout's deadline), so read
            # them as the breakers judged them when they were made
            base = self._weigh_base(run, read_at, hung=True)
            anomaly = self._observe(rows, run, read_at, hung=True)
        suspects = diagnose(base, anomaly, around=around)
        affected = len(
            {
                r.payment_id
                for r, seen in zip(rows, anomaly, strict=True)
                if seen.failed
                and (channel == "*" or r.provider == channel)
                and all(getattr(r, d, None) == v for d, v in dims.items())
            }
        )
        diagnosis = suspects[:5]  # the store keeps them as JSON

        def write(conn: Connection) -> None:
            incident_repo.update(conn, incident_id, affected_payments=affected, diagnosis=diagnosis)

        await self.service.store.run(write)

    def _baseline(self, conn: Connection, split: float) -> list[Call]:
        """The calls of up to BASELINE_S before `split` while no incident was open.

        Read once for a run, at its first refresh, and kept while it is young: its
        window is in the past, and re-reading minutes of calls every REFRESH_S for each
        open incident was nearly half of the worker's CPU in the lab's primary outage.
        (A call of that window whose outcome a status query settles later keeps the
        status it had then.)"""
        opened = incident_repo.open_during(conn, self._at(split - LOOKBACK_S), self._at(split))
        busy = [(self._epoch(a), self._epoch(b) + SETTLE_S if b else math.inf) for a, b in opened]
        spans = quiet_spans(split, busy, BASELINE_S, LOOKBACK_S)
        if sum(b - a for a, b in spans) < MIN_QUIET_S:
            spans = [(split - BASELINE_S, split)]
        return [r for a, b in spans for r in call_repo.calls_between(conn, *self._dt(a, b))]

    def _weigh_base(self, run: _Run, now: datetime, *, hung: bool) -> list[Observation]:
        weighed = run.weighed.get(hung)
        if weighed is None:
            assert run.base is not None
            weighed = run.weighed[hung] = self._observe(run.base, run, now, hung=hung)
        return weighed

    def _observe(
        self, rows: list[Call], run: _Run, now: datetime, *, hung: bool = False
    ) -> list[Observation]:
        """The calls as the diagnosis weighs them; `hung`: a call that failed technically
        when it was made counts as failed though a status query found it charged. (A
        refresh weighs every call of minutes at full traffic: what is the same for each
        is worked out once.)"""
        now_s = now.timestamp()  # `_epoch`, with the clock read once for every call
        slow = run.slow_ms
        technical_codes = self._technical
        unknown, succeeded = AttemptStatus.UNKNOWN, AttemptStatus.SUCCEEDED
        found: list[Observation] = []
        append = found.append
        for _, provider, status, code, latency_ms, created_at, method, bank, region in rows:
            dims = {
                "channel": provider,
                "method": method,
                "bank": bank,
                "region": region,
                "code": code,
            }
            at = now_s + (created_at - now).total_seconds()
            if slow is not None:
                failed = latency_ms is not None and latency_ms > slow
            else:
                # a timeout whose charge a later status query found is a success, as
                # health counts it (engine/call_health.py); one still unknown is a failure
                failed = status == unknown or (
                    (hung or status != succeeded) and code in technical_codes
                )
            append(Observation(dims, failed, at))
        return found

    def _at(self, epoch_s: float) -> datetime:
        """Health time (epoch seconds on the service's clock) as the store's datetime."""
        now = self.service.clock.now()
        return now + timedelta(seconds=epoch_s - now.timestamp())

    def _epoch(self, at: datetime, now: datetime | None = None) -> float:
        """The store's datetime as health time: the inverse of `_at` (`now`: the clock
        read once for many)."""
        now = now or self.service.clock.now()
        return now.timestamp() + (at - now).total_seconds()

    def _dt(self, since: float, until: float) -> tuple[datetime, datetime]:
        return self._at(since), self._at(until)


def quiet_spans(
    end: float, busy: list[tuple[float, float]], need_s: float, lookback_s: float
) -> list[tuple[float, float]]:
    """Up to `need_s` seconds before `end`, latest first, when no incident was open
    (`busy`: their open periods), looking back at most `lookback_s`. A baseline taken
    during another fault would expect that fault's failures and hide this one's."""
    floor, cursor, got = end - lookback_s, end, 0.0
    spans: list[tuple[float, float]] = []
    for opened, resolved in sorted(busy, key=lambda b: b[1], reverse=True):
        if resolved < cursor:
            start = max(resolved, floor, cursor - (need_s - got))
            if start < cursor:
                spans.append((start, cursor))
                got += cursor - start
        cursor = min(cursor, opened)
        if got >= need_s or cursor <= floor:
            return spans
    start = max(floor, cursor - (need_s - got))
    if start < cursor:
        spans.append((start, cursor))
    return spans


def _for(method: str | None) -> str:
    return f" for {method}" if method else ""
