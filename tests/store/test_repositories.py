"""The store keeps its promises on SQLite and PostgreSQL alike."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from functools import partial

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from paymend.domain.errors import Conflict, NotFound, StaleWrite, Unavailable
from paymend.domain.events import EventType
from paymend.domain.ids import AttemptId, MerchantId, PaymentId
from paymend.domain.money import Money
from paymend.domain.payment import Attempt, AttemptStatus, Customer, Payment, PaymentStatus
from paymend.store import idempotency, merchants, outbox
from paymend.store import payments as repo
from paymend.store.database import Store
from paymend.store.tables import metadata
from tests.helpers import NOW, count_rows, make_merchant


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url, inline=True)
    yield s
    s.close()


def a_payment(merchant_id: MerchantId, pid: str = "pay_1") -> Payment:
    p = Payment(
        PaymentId(pid),
        merchant_id,
        "order-1",
        Money(1999, "CNY"),
        "card",
        customer=Customer("c1", "zh-CN", "+8613812345678", "li@example.com"),
        metadata={"cart": "42"},
    )
    p.transition(PaymentStatus.PROCESSING)
    return p


def test_migrations_match_the_tables(store: Store) -> None:
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_payment_round_trip_keeps_every_field(store: Store) -> None:
    mid, _ = make_merchant(store)
    p = a_payment(mid)
    store.run_sync(lambda c: repo.insert_payment(c, p, NOW))
    got = store.run_sync(lambda c: repo.get_payment(c, "pay_1", mid))
    # every field, but the customer's email and phone come back masked only
    assert got == replace(p, customer=replace(p.customer, phone=None, email=None))
    assert got.customer.masked()["phone"] == "+86****5678"
    assert got.created_at == NOW and got.created_at.tzinfo is not None
    with pytest.raises(NotFound):
        store.run_sync(lambda c: repo.get_payment(c, "pay_1", "mer_other"))


def test_api_keys_are_stored_hashed(store: Store) -> None:
    mid, key = make_merchant(store)
    with store.engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT * FROM merchant_keys")).one()
    assert key not in str(stored) and key[-4:] == stored.hint[-4:]
    found = store.run_sync(lambda c: merchants.by_api_key(c, key, NOW))
    assert found is not None and found.id == mid
    assert store.run_sync(lambda c: merchants.by_api_key(c, key + "x", NOW)) is None


def test_merchant_names_are_unique(store: Store) -> None:
    make_merchant(store, "shop")
    before = count_rows(store)
    with pytest.raises(Conflict) as taken:
        store.run_sync(lambda c: merchants.create(c, MerchantId("mer_2"), "shop", NOW))
    assert taken.value.code == "merchant_name_taken"
    assert count_rows(store) == before


def test_a_stale_write_is_refused(store: Store) -> None:
    mid, _ = make_merchant(store)
    store.run_sync(lambda c: repo.insert_payment(c, a_payment(mid), NOW))
    first = store.run_sync(lambda c: repo.get_payment(c, "pay_1"))
    second = store.run_sync(lambda c: repo.get_payment(c, "pay_1"))
    first.transition(PaymentStatus.SUCCEEDED)
    store.run_sync(lambda c: repo.update_payment(c, first, NOW))
    second.transition(PaymentStatus.FAILED)
    with pytest.raises(StaleWrite):
        store.run_sync(lambda c: repo.update_payment(c, second, NOW))
    assert store.run_sync(lambda c: repo.get_payment(c, "pay_1")).status is PaymentStatus.SUCCEEDED


def test_the_database_allows_one_succeeded_attempt_per_payment(store: Store) -> None:
    mid, _ = make_merchant(store)
    store.run_sync(lambda c: repo.insert_payment(c, a_payment(mid), NOW))
    for seq in (1, 2):
        a = Attempt(AttemptId(f"att_{seq}"), PaymentId("pay_1"), seq, "sim_a", created_at=NOW)
        store.run_sync(partial(repo.insert_attempt, a=a))
    a1, a2 = store.run_sync(lambda c: repo.list_attempts(c, "pay_1"))
    a1.transition(AttemptStatus.SUCCEEDED)
    store.run_sync(lambda c: repo.update_attempt(c, a1))
    a2.transition(AttemptStatus.SUCCEEDED)
    with pytest.raises(sa.exc.IntegrityError):
        store.run_sync(lambda c: repo.update_attempt(c, a2))


def test_refunds_above_the_amount_are_refused_by_the_database(store: Store) -> None:
    mid, _ = make_merchant(store)
    store.run_sync(lambda c: repo.insert_payment(c, a_payment(mid), NOW))
    with pytest.raises(sa.exc.IntegrityError):
        store.run_sync(
            lambda c: c.execute(sa.text("UPDATE payments SET amount_refunded = amount + 1"))
        )


def test_a_state_change_and_its_event_commit_together(store: Store) -> None:
    mid, _ = make_merchant(store)
    p = a_payment(mid)

    def create_then_fail(conn: sa.Connection) -> None:
        repo.insert_payment(conn, p, NOW)
        outbox.add(conn, "evt_1", mid, EventType.PAYMENT_CREATED, p.id, {"x": 1}, NOW)
        raise Conflict("boom", "something went wrong after the writes")

    before = count_rows(store)
    with pytest.raises(Conflict):
        store.run_sync(create_then_fail)
    assert count_rows(store) == before

    def create(conn: sa.Connection) -> None:
        repo.insert_payment(conn, p, NOW)
        outbox.add(conn, "evt_1", mid, EventType.PAYMENT_CREATED, p.id, {"x": 1}, NOW)

    store.run_sync(create)
    events = store.run_sync(lambda c: outbox.unpublished(c))
    assert [e.type for e in events] == ["payment.created"]
    heads = store.run_sync(lambda c: outbox.unpublished_heads(c))
    assert heads == [outbox.Head("evt_1", mid, "payment.created")]
    store.run_sync(lambda c: outbox.mark_published(c, ["evt_1"], NOW))
    assert store.run_sync(lambda c: outbox.unpublished(c)) == []
    assert store.run_sync(lambda c: outbox.unpublished_heads(c)) == []


def test_idempotency_key_claim_replay_and_conflict(store: Store) -> None:
    mid, _ = make_merchant(store)
    digest = idempotency.request_hash("/v1/payments", {"a": 1})
    claim = store.run_sync(lambda c: idempotency.claim(c, mid, "k", "/v1/payments", digest, NOW))
    assert isinstance(claim, idempotency.Claim)
    with pytest.raises(Conflict) as busy:
        store.run_sync(lambda c: idempotency.claim(c, mid, "k", "/v1/payments", digest, NOW))
    assert busy.value.code == "idempotency_request_in_progress"
    store.run_sync(lambda c: idempotency.complete(c, claim, 201, {"id": "pay_1"}, NOW))
    replay = store.run_sync(lambda c: idempotency.claim(c, mid, "k", "/v1/payments", digest, NOW))
    assert replay == idempotency.Replay(201, {"id": "pay_1"})
    other = idempotency.request_hash("/v1/payments", {"a": 2})
    with pytest.raises(Conflict) as reused:
        store.run_sync(lambda c: idempotency.claim(c, mid, "k", "/v1/payments", other, NOW))
    assert reused.value.code == "idempotency_key_reused"


def test_concurrent_claims_of_one_key_have_one_winner(db_url: str) -> None:
    store = Store(db_url, inline=True, pool_size=8)
    try:
        mid, _ = make_merchant(store)
        digest = idempotency.request_hash("/v1/payments", {})
        barrier = threading.Barrier(8)
        results: list[str] = []

        def contender() -> None:
            barrier.wait()
            try:
                store.run_sync(
                    lambda c: idempotency.claim(c, mid, "same", "/v1/payments", digest, NOW)
                )
                results.append("won")
            except Conflict:
                results.append("busy")

        threads = [threading.Thread(target=contender) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == ["busy"] * 7 + ["won"]
    finally:
        store.close()


def test_an_unreachable_database_is_reported_as_unavailable() -> None:
    store = Store("postgresql+psycopg://nobody@127.0.0.1:1/none", inline=True)
    try:
        with pytest.raises(Unavailable) as info:
            store.run_sync(lambda c: c.execute(sa.text("SELECT 1")))
        assert info.value.code == "database_unavailable"
        assert info.value.status == 503
    finally:
        store.close()
