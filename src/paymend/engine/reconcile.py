"""Reconciliation: the store against each provider's settlement report.

Every charge the provider settled must be a succeeded attempt (or a reversed one whose
refund went back), every succeeded attempt must be a settled charge of the same amount,
and refunds must agree. Mismatches are listed; with `fix`, charges the store believes
failed or never recorded are settled the safe way: counted if the payment is still open,
refunded at once otherwise. Payments stuck in `processing` are asked about too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from paymend.domain.payment import AttemptStatus
from paymend.engine.ops_events import OpsEventKind, raise_event
from paymend.engine.payments import PaymentService
from paymend.observability import get_logger
from paymend.providers.base import (
    ProviderConnectionError,
    SettlementLine,
    SettlementPeriod,
    Settlements,
)
from paymend.store import reconciliation as repo
from paymend.store.database import Connection
from paymend.store.reconciliation import Recorded

log = get_logger("paymend.reconcile")
STUCK_AFTER = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class Mismatch:
    kind: str  # charged_not_recorded | recorded_not_charged | amount | refund | unknown_charge
    provider: str
    reference: str | None
    payment_id: str | None
    attempt_id: str | None
    store: str
    provider_says: str
    fixed: bool = False


@dataclass(slots=True)
class Report:
    providers: list[str] = field(default_factory=list)
    charges_compared: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)
    stuck_payments: list[str] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)  # whose report could not be read

    def as_dict(self) -> dict[str, Any]:
        return {
            "providers": self.providers,
            "charges_compared": self.charges_compared,
            "mismatches": [asdict(m) for m in self.mismatches],
            "stuck_payments": self.stuck_payments,
            "unreachable": self.unreachable,
            "ok": not self.mismatches and not self.stuck_payments and not self.unreachable,
        }


async def reconcile(service: PaymentService, *, fix: bool = False) -> Report:
    report = Report()
    for name, provider in service.providers.items():
        if not isinstance(provider, Settlements):
            continue  # nothing to compare with
        report.providers.append(name)
        try:
            lines = await provider.settlements()
        except ProviderConnectionError as exc:  # its report cannot be read now
            log.warning("settlement_report_unreachable", provider=name, raw_code=exc.raw_code)
            report.unreachable.append(name)
            continue
        report.charges_compared += len(lines)
        between = provider.settled_between if isinstance(provider, SettlementPeriod) else None
        await _compare(service, name, lines, report, fix, between)
    await _stuck(service, report, fix)
    for m in report.mismatches:
        log.warning("reconciliation_mismatch", **asdict(m))
    unfixed = [m for m in report.mismatches if not m.fixed]
    if unfixed:
        now = service.clock.now()
        await service.store.run(lambda conn: _page(conn, unfixed, now))
    return report


def _page(conn: Connection, mismatches: list[Mismatch], now: datetime) -> None:
    """Each mismatch not fixed pages ops once, however many runs find it again."""
    for m in mismatches:
        raise_event(
            conn,
            now,
            OpsEventKind.RECONCILIATION_MISMATCH,
            f"{m.provider}:{m.kind}:{m.reference or m.attempt_id or m.payment_id}",
            f"reconciliation: {m.kind} on {m.provider}: we have {m.store}, "
            f"{m.provider} says {m.provider_says}",
            scope={"channel": m.provider},
            payment_id=m.payment_id,
            attempt_id=m.attempt_id,
            reference=m.reference,
        )


async def _compare(
    service: PaymentService,
    name: str,
    lines: list[SettlementLine],
    report: Report,
    fix: bool,
    between: tuple[datetime, datetime] | None = None,
) -> None:
    def read(conn: Connection) -> tuple[dict[str, Recorded], list[Recorded], dict[str, int]]:
        return (
            repo.by_idempotency_key(conn, [ln.idempotency_key for ln in lines]),
            repo.succeeded(conn, name, between),
            repo.refunded_by_attempt(conn),
        )

    keyed, succeeded, refunded = await service.store.run(read)
    settled_refs = {ln.reference for ln in lines}
    for line in lines:
        row = keyed.get(line.idempotency_key)
        if row is None:
            report.mismatches.append(
                Mismatch(
                    "unknown_charge",
                    name,
                    line.reference,
                    line.payment_id,
                    None,
                    "no attempt with this idempotency key",
                    f"charged {line.amount.minor}",
                )
            )
            continue
        status = row.status
        if status not in (AttemptStatus.SUCCEEDED, AttemptStatus.REVERSED):
            fixed = False
            if fix:
                await service.charged_after_all(row.attempt_id, line.reference)
                fixed = True
            report.mismatches.append(
                Mismatch(
                    "charged_not_recorded",
                    name,
                    line.reference,
                    row.payment_id,
                    row.attempt_id,
                    f"attempt {status.value}",
                    f"charged {line.amount.minor}",
                    fixed,
                )
            )
            continue
        if line.amount.minor != row.amount:
            report.mismatches.append(
                Mismatch(
                    "amount",
                    name,
                    line.reference,
                    row.payment_id,
                    row.attempt_id,
                    f"amount {row.amount}",
                    f"charged {line.amount.minor}",
                )
            )
        ours = refunded.get(row.attempt_id, 0)
        if ours != line.refunded:
            report.mismatches.append(
                Mismatch(
                    "refund",
                    name,
                    line.reference,
                    row.payment_id,
                    row.attempt_id,
                    f"refunded {ours}",
                    f"refunded {line.refunded}",
                )
            )
    for row in succeeded:
        if row.reference not in settled_refs:
            report.mismatches.append(
                Mismatch(
                    "recorded_not_charged",
                    name,
                    row.reference,
                    row.payment_id,
                    row.attempt_id,
                    "attempt succeeded",
                    "no such charge settled",
                )
            )


async def _stuck(service: PaymentService, report: Report, fix: bool) -> None:
    cutoff = service.clock.now() - STUCK_AFTER

    for payment_id, attempt_id in await service.store.run(lambda c: repo.stuck(c, cutoff)):
        report.stuck_payments.append(payment_id)
        if fix:
            await service.settle_attempt(attempt_id)
