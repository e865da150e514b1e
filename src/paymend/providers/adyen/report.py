"""Adyen's Settlement details report, read into SettlementLines for reconciliation.

The report (https://docs.adyen.com/reporting/settlement-detail-report/) is a CSV, one
row per settled or otherwise booked modification, with the columns `Company Account`,
`Merchant Account`, `Psp Reference`, `Merchant Reference`, `Payment Method`, `Creation
Date`, `TimeZone`, `Type`, `Modification Reference`, `Gross Currency`, `Gross Debit (GC)`,
`Gross Credit (GC)`, `Exchange Rate`, `Net Currency`, `Net Debit (NC)`, `Net Credit (NC)`,
`Commission (NC)`, …, `Batch Number`. Amounts are decimals in the currency's major unit
(`19.99`). A `Settled` row is the payment's money in (its Gross Credit); a `Refunded`
row of the same Psp Reference is money sent back (its Gross Debit); the other types
(fees, chargebacks, payouts) are not charges and are not read here. The payment's
`Merchant Reference` is our `reference`: the attempt's idempotency key.
"""

from __future__ import annotations

import csv
import io

from paymend.domain.errors import InvalidInput
from paymend.domain.money import Money
from paymend.providers.base import SettlementLine

PSP = "Psp Reference"
MERCHANT_REFERENCE = "Merchant Reference"
TYPE = "Type"
CURRENCY = "Gross Currency"
DEBIT, CREDIT = "Gross Debit (GC)", "Gross Credit (GC)"
SETTLED, REFUNDED = "Settled", "Refunded"
COLUMNS = [
    "Company Account", "Merchant Account", PSP, MERCHANT_REFERENCE, "Payment Method",
    "Creation Date", "TimeZone", TYPE, "Modification Reference", CURRENCY, DEBIT, CREDIT,
    "Exchange Rate", "Net Currency", "Net Debit (NC)", "Net Credit (NC)", "Commission (NC)",
    "Markup (NC)", "Scheme Fees (NC)", "Interchange (NC)", "Payment Method Variant",
    "Modification Merchant Reference", "Batch Number",
]  # fmt: skip
MAX_BYTES = 256 * 1024 * 1024


def parse(content: bytes) -> list[SettlementLine]:
    """Every settled payment of one report, with what was refunded of it; ValueError
    for a file that is not the report."""
    if len(content) > MAX_BYTES:
        raise ValueError(f"the report is larger than {MAX_BYTES} bytes")
    text = content.decode("utf-8-sig")
    reader = csv.DictReader(io.StringIO(text))
    needed = {PSP, MERCHANT_REFERENCE, TYPE, CURRENCY, DEBIT, CREDIT}
    missing = needed - set(reader.fieldnames or ())
    if missing:
        raise ValueError(f"not a settlement details report: no {', '.join(sorted(missing))}")
    settled: dict[str, tuple[str, Money]] = {}
    refunded: dict[str, int] = {}
    for row in reader:
        cells = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
        psp, kind = cells.get(PSP, ""), cells.get(TYPE, "")
        if not psp:
            continue
        if kind == SETTLED:
            settled[psp] = (cells[MERCHANT_REFERENCE], _money(cells[CREDIT], cells[CURRENCY]))
        elif kind == REFUNDED:
            back = _money(cells[DEBIT], cells[CURRENCY]).minor
            refunded[psp] = refunded.get(psp, 0) + back
    return [
        SettlementLine(psp, reference, "", amount, refunded.get(psp, 0))
        for psp, (reference, amount) in settled.items()
    ]


def _money(text: str, currency: str) -> Money:
    try:
        return Money.parse(text, currency)
    except InvalidInput as exc:
        raise ValueError(f"bad amount {text!r} {currency}: {exc}") from None


def write(rows: list[tuple[str, str, str, str, Money]], merchant_account: str) -> bytes:
    """A report from (psp reference, merchant reference, type, modification reference,
    amount) rows, as Adyen publishes it: what the simulator's face serves."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for psp, reference, kind, modification, amount in rows:
        debit = amount.format() if kind == REFUNDED else ""
        credit = amount.format() if kind == SETTLED else ""
        row = {c: "" for c in COLUMNS}
        row |= {
            "Company Account": "PaymendCompany",
            "Merchant Account": merchant_account,
            PSP: psp,
            MERCHANT_REFERENCE: reference,
            "Payment Method": "visa",
            TYPE: kind,
            "Modification Reference": modification,
            CURRENCY: amount.currency,
            DEBIT: debit,
            CREDIT: credit,
            "Batch Number": "1",
        }
        writer.writerow([row[c] for c in COLUMNS])
    return out.getvalue().encode("utf-8")
