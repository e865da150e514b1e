"""Rows the store tests write with prepared statements, in the tables' own shape."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

NOW = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)
# the merchant every payment_row belongs to
MERCHANT = {"id": "mer_1", "name": "Shop", "settings": {}, "created_at": NOW}


def payment_row(pid: str, **changes: Any) -> dict[str, Any]:
    """A `payments` row of merchant `mer_1`, with JSON, non-ASCII text and NULLs in it."""
    row = {
        "id": pid,
        "merchant_id": "mer_1",
        "order_id": f"order-{pid}",
        "amount": 12345,
        "currency": "CNY",
        "method": "card",
        "status": "processing",
        "amount_refunded": 0,
        "amount_refund_pending": 0,
        "bank": "ICBC",
        "region": "CN-East",
        "metadata": {"cart": ["a", "b"], "note": "第一"},
        "customer": {"id": "c1", "locale": "zh-CN"},
        "payment_token": "tok_1",
        "failure_code": None,
        "failure_message": None,
        "trace_id": None,
        "version": 1,
        "created_at": NOW,
        "updated_at": NOW,
        "split": False,
    }
    row.update(changes)
    return row
