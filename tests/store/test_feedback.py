"""Feedback rows on SQLite and PostgreSQL: stored as given, read back by time with both
ends included, reasons as JSON and "did this help?" as a boolean."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from paymend.store import feedback
from paymend.store.database import Store
from tests.helpers import NOW


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url, inline=True)
    yield s
    s.close()


def row(n: int, **more: Any) -> dict[str, Any]:
    return {
        "id": f"fb_{n}",
        "merchant_id": "mer_1",
        "payment_id": None,
        "source": "api",
        "step": "checkout",
        "rating": None,
        "helpful": None,
        "reasons": [],
        "text": "",
        "failure_code": "",
        "channel": "",
        "method": "",
        "bank": "",
        "locale": "zh-CN",
        "created_at": NOW + timedelta(hours=n),
    } | more


def test_feedback_is_read_back_by_time_newest_first(store: Store) -> None:
    store.run_sync(lambda c: feedback.insert(c, row(0, reasons=["too_slow", "other"], rating=2)))
    store.run_sync(lambda c: feedback.insert(c, row(1, helpful=False, text="余额 ***5678")))
    store.run_sync(lambda c: feedback.insert(c, row(2)))
    found = store.run_sync(lambda c: feedback.since(c, NOW, NOW + timedelta(hours=1)))
    assert [r["id"] for r in found] == ["fb_1", "fb_0"]
    assert found[0]["helpful"] is False and found[0]["text"] == "余额 ***5678"
    assert found[1]["reasons"] == ["too_slow", "other"] and found[1]["rating"] == 2
    assert found[1]["created_at"] == NOW
