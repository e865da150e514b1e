"""Stripe's balance transactions as paymend's settlement report.

Every charge that moved money, and every refund, is a balance transaction
(https://docs.stripe.com/api/balance_transactions/list): `type` charge or payment for a
charge, refund or payment_refund for a refund, `source` the Charge or Refund. Its own
`amount` is in the account's settlement currency after conversion, so the line's
amount is read from the source (the charge as the customer paid it) and refunds are
added up in the charge's currency. The PaymentIntent, expanded from the charge, carries
the attempt's key in its metadata: that is what reconciliation matches on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, cast

import stripe
import structlog

from paymend.providers.base import SettlementLine
from paymend.providers.stripe.amounts import UnrepresentableAmount, from_stripe
from paymend.providers.stripe.mapping import ATTEMPT_KEY, PAYMENT_KEY

log = structlog.get_logger("paymend.providers.stripe")

CHARGE_TYPES = frozenset({"charge", "payment"})
REFUND_TYPES = frozenset({"refund", "payment_refund"})
PAGE = 100  # Stripe's largest page
MAX_PAGES = 1000  # a bound on one report: 100 000 transactions
EXPAND = ["data.source", "data.source.payment_intent"]


@dataclass(slots=True)
class _Charge:
    intent: str
    key: str
    payment: str
    amount: int
    currency: str
    refunded: int = 0


async def settlement_lines(client: stripe.StripeClient, since: int | None) -> list[SettlementLine]:
    """Every paymend charge in the balance transactions created at or after `since`
    (a Unix time; None: all), with what was refunded of it in the same window."""
    charges: dict[str, _Charge] = {}
    refunds: list[Mapping[str, Any]] = []
    async for txn in _transactions(client, since):
        kind, source = txn.get("type"), txn.get("source")
        if not isinstance(source, Mapping):
            continue
        if kind in CHARGE_TYPES:
            charge = _charge(source)
            if charge is not None:
                charges[str(source.get("id"))] = charge
        elif kind in REFUND_TYPES:
            refunds.append(source)
    for refund in refunds:
        charge = charges.get(str(refund.get("charge")))
        amount = refund.get("amount")
        if charge is not None and isinstance(amount, int):
            charge.refunded += amount
    lines = (_line(c) for c in charges.values())
    return [line for line in lines if line is not None]


async def _transactions(
    client: stripe.StripeClient, since: int | None
) -> AsyncIterator[dict[str, Any]]:
    params: dict[str, Any] = {"limit": PAGE, "expand": EXPAND}
    if since is not None:
        params["created"] = {"gte": since}
    for _ in range(MAX_PAGES):
        page = await client.v1.balance_transactions.list_async(cast(Any, params))
        rows = [t.to_dict() for t in page.data]
        for row in rows:
            yield row
        if not page.has_more or not rows:
            return
        params["starting_after"] = rows[-1]["id"]
    log.warning("stripe_settlement_truncated", pages=MAX_PAGES)


def _charge(source: Mapping[str, Any]) -> _Charge | None:
    """The charge behind a transaction, if paymend made it (its PaymentIntent names the
    attempt); the charge's own metadata is read first, then its PaymentIntent's."""
    intent = source.get("payment_intent")
    metadata = _metadata(source)
    if isinstance(intent, Mapping):
        metadata = {**_metadata(intent), **metadata}
        intent = intent.get("id")
    key, amount, currency = metadata.get(ATTEMPT_KEY), source.get("amount"), source.get("currency")
    if not (isinstance(intent, str) and isinstance(key, str) and isinstance(amount, int)):
        return None
    if not isinstance(currency, str):
        return None
    return _Charge(intent, key, str(metadata.get(PAYMENT_KEY, "")), amount, currency)


def _line(charge: _Charge) -> SettlementLine | None:
    try:
        amount = from_stripe(charge.amount, charge.currency)
        refunded = from_stripe(charge.refunded, charge.currency).minor
    except UnrepresentableAmount:
        log.warning("stripe_settlement_amount_unreadable", reference=charge.intent)
        return None
    return SettlementLine(charge.intent, charge.key, charge.payment, amount, refunded)


def _metadata(obj: Mapping[str, Any]) -> dict[str, Any]:
    metadata = obj.get("metadata")
    return dict(metadata) if isinstance(metadata, Mapping) else {}
