"""A simulator ledger kept in a SQLite file, written through on every change.

The provider's truth must outlive paymend's process: crash tests kill paymend mid-payment
and then compare its store with what the provider charged, and `paymend reconcile` reads
the provider's settlement list from another process. Uses the standard library's
sqlite3 directly: this is the fake provider's own storage, not paymend's database.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

from paymend.domain.money import Money
from paymend.providers.base import ProviderOutcome, ProviderResult
from paymend.providers.simulator import ChargeState, Ledger, LedgerCharge

_SCHEMA = """
CREATE TABLE IF NOT EXISTS charges (
    idempotency_key TEXT PRIMARY KEY, reference TEXT UNIQUE, payment_id TEXT,
    amount INTEGER, currency TEXT, state TEXT, refunded INTEGER, result TEXT,
    booked_at REAL);
CREATE INDEX IF NOT EXISTS charges_payment ON charges (payment_id);
CREATE TABLE IF NOT EXISTS refunds (
    idempotency_key TEXT PRIMARY KEY, reference TEXT, amount INTEGER);
"""


class SqliteLedger(Ledger):
    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = str(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.executescript(_SCHEMA)

    def get(self, key: str) -> LedgerCharge | None:
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM charges WHERE idempotency_key = ?", (key,)
            ).fetchone()
        return _charge(row) if row else None

    def put(self, charge: LedgerCharge) -> None:
        result = None
        if charge.result is not None:
            r = charge.result
            result = json.dumps([r.outcome.value, r.raw_code, r.raw_message, r.reference])
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO charges VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    charge.idempotency_key,
                    charge.reference,
                    charge.payment_id,
                    charge.amount.minor,
                    charge.amount.currency,
                    charge.state.value,
                    charge.refunded,
                    result,
                    charge.booked_at,
                ),
            )

    def by_reference(self, reference: str) -> LedgerCharge | None:
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM charges WHERE reference = ?", (reference,)
            ).fetchone()
        return _charge(row) if row else None

    def all_charges(self) -> list[LedgerCharge]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM charges ORDER BY rowid").fetchall()
        return [_charge(r) for r in rows]

    def refund_get(self, key: str) -> tuple[str, int] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT reference, amount FROM refunds WHERE idempotency_key = ?", (key,)
            ).fetchone()
        return (str(row[0]), int(row[1])) if row else None

    def refund_put(self, key: str, reference: str, amount: int) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO refunds VALUES (?, ?, ?)", (key, reference, amount)
            )

    def size(self) -> int:
        with self._lock:
            a = self._db.execute("SELECT count(*) FROM charges").fetchone()[0]
            b = self._db.execute("SELECT count(*) FROM refunds").fetchone()[0]
        return int(a) + int(b)

    def charged(self, payment_id: str) -> list[LedgerCharge]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM charges WHERE payment_id = ? AND state = ?",
                (payment_id, ChargeState.CHARGED.value),
            ).fetchall()
        return [_charge(r) for r in rows]

    def close(self) -> None:
        self._db.close()


def _charge(row: tuple[object, ...]) -> LedgerCharge:
    key, reference, payment_id, amount, currency, state, refunded, result, booked_at = row
    parsed = None
    if result:
        outcome, code, message, ref = json.loads(str(result))
        parsed = ProviderResult(ProviderOutcome(outcome), code, message, ref)
    return LedgerCharge(
        reference=str(reference),
        idempotency_key=str(key),
        payment_id=str(payment_id),
        amount=Money(int(str(amount)), str(currency)),
        state=ChargeState(str(state)),
        refunded=int(str(refunded)),
        result=parsed,
        booked_at=float(str(booked_at or 0.0)),
    )
