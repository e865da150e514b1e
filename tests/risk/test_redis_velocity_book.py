"""The Redis velocity book's sets on a real Redis: what a payment adds, what ages out of
them, and how long they live."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import cast

import pytest

from paymend.risk.features import Subjects
from paymend.risk.redis_velocity import RedisVelocity
from paymend.risk.velocity import LONGEST_S

pytestmark = pytest.mark.redis

T0 = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
WHO = Subjects(card="fp_1", customer="c-1", device="", ip="100.64.0.1", email="a@example.com")


@pytest.fixture
def book(redis_url: str) -> Iterator[RedisVelocity]:
    found = RedisVelocity.from_url(redis_url)
    found.prefix = f"paymend-test:{uuid.uuid4().hex}"
    yield found
    keys = list(found.client.scan_iter(f"{found.prefix}:*"))
    if keys:
        found.client.delete(*keys)
    found.client.close()


def members(book: RedisVelocity, kind: str, subject: str, value: str) -> list[str]:
    key = book._key(kind, subject, value)
    # redis-py types a reply loosely; ZRANGE without scores answers a list of bytes
    return [m.decode() for m in cast(list[bytes], book.client.zrange(key, 0, -1))]


def test_a_payment_is_added_to_each_of_its_subjects_and_nothing_else(book: RedisVelocity) -> None:
    assert book.seen("pay_1", WHO, 19.99, "CNY", T0)
    for subject, value in WHO.items():
        assert members(book, "pay", subject, value) == ["pay_1|19.99|CNY|fp_1"], subject
        ttl = book.client.ttl(book._key("pay", subject, value))
        assert LONGEST_S < ttl <= LONGEST_S + 60
    assert not list(book.client.scan_iter(f"{book.prefix}:pay:device:*"))  # unknown: no set
    assert book.settled("pay_1", WHO, True, T0)
    assert members(book, "fail", "ip", "100.64.0.1") == ["pay_1|1"]
    history = book.history(WHO, T0)
    assert history is not None
    (seen,) = history["ip"]
    assert (seen.payment_id, seen.amount_major, seen.failed, seen.fraud) == (
        "pay_1",
        19.99,
        True,
        True,
    )
    assert seen.at == T0.timestamp()


def test_a_write_drops_what_is_a_day_old_or_older_and_keeps_the_rest(
    book: RedisVelocity,
) -> None:
    day = timedelta(seconds=LONGEST_S)
    book.seen("pay_old", WHO, 1.0, "CNY", T0)
    book.seen("pay_mid", WHO, 2.0, "CNY", T0 + timedelta(seconds=1))
    book.seen("pay_new", WHO, 3.0, "CNY", T0 + day)  # pay_old is exactly a day old: dropped
    assert [m.split("|")[0] for m in members(book, "pay", "card", "fp_1")] == [
        "pay_mid",
        "pay_new",
    ]
    other = Subjects(card="fp_2", customer="", device="", ip="", email="")
    assert book.seen("pay_x", other, 1.0, "CNY", T0)
    assert members(book, "pay", "card", "fp_2") == ["pay_x|1.0|CNY|fp_2"]  # its own set only


def test_a_payment_without_any_subject_writes_nothing(book: RedisVelocity) -> None:
    nobody = Subjects(card="", customer="", device="", ip="", email="")
    assert book.seen("pay_1", nobody, 1.0, "CNY", T0)
    assert not list(book.client.scan_iter(f"{book.prefix}:*"))
