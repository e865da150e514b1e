"""Customer email and phone at rest: sealed under the data key (or not stored at all),
opened again with the current or a rotated key, matched by blind index, on SQLite and
PostgreSQL, and never written in clear."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from functools import partial

import pytest
import sqlalchemy as sa

from paymend.domain.ids import MerchantId, PaymentId
from paymend.domain.money import Money
from paymend.domain.payment import Customer, Payment, PaymentStatus
from paymend.store import payments as repo
from paymend.store import pii
from paymend.store.database import Store
from paymend.store.migrate import downgrade, upgrade
from paymend.store.pii import DataKey, DataKeyError, SealedValueError, Vault
from paymend.store.tables import JSON, UTCDateTime, metadata, payments
from tests.helpers import NOW, make_merchant

EMAIL, PHONE = "Li.Wei@Example.com", "+86 138-1234-5678"
CLEAR = ("li.wei@example.com", "13812345678", "138-1234-5678")


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url, inline=True)
    yield s
    s.close()


def a_payment(mid: MerchantId, pid: str = "pay_1", **customer: str) -> Payment:
    p = Payment(
        PaymentId(pid),
        mid,
        f"order-{pid}",
        Money(1999, "CNY"),
        "card",
        customer=Customer("c1", "zh-CN", **(customer or {"phone": PHONE, "email": EMAIL})),
    )
    p.transition(PaymentStatus.PROCESSING)
    return p


def everything_stored(store: Store) -> str:
    """Every row of every table as text: clear contact details must be nowhere in it."""

    def read(conn: sa.Connection) -> str:
        return "\n".join(
            repr(tuple(row)) for t in metadata.sorted_tables for row in conn.execute(sa.select(t))
        ).lower()

    return store.run_sync(read)


def raw_row(store: Store, pid: str) -> sa.Row[tuple[object, ...]]:
    return store.run_sync(
        lambda c: c.execute(sa.select(payments).where(payments.c.id == pid)).one()
    )


# -- the vault ----------------------------------------------------------------------------


def test_a_sealed_value_names_its_key_and_opens_only_for_its_row_and_field() -> None:
    vault = Vault(DataKey.generate())
    sealed = vault.seal("email", EMAIL, "pay_1")
    prefix, key_id, _ = sealed.split(".")
    assert (prefix, key_id) == ("pm1", vault.current.id if vault.current else None)
    assert EMAIL.lower() not in sealed.lower()
    assert vault.open("email", sealed, "pay_1") == EMAIL
    assert vault.seal("email", EMAIL, "pay_1") != sealed  # a fresh nonce every time
    with pytest.raises(SealedValueError):
        vault.open("email", sealed, "pay_2")  # moved to another payment
    with pytest.raises(SealedValueError):
        vault.open("phone", sealed, "pay_1")  # moved to another field
    with pytest.raises(SealedValueError):
        Vault(DataKey.generate()).open("email", sealed, "pay_1")  # another key


def test_a_rotated_key_keeps_opening_what_it_sealed() -> None:
    old, new = DataKey.generate(), DataKey.generate()
    sealed = Vault(old).seal("phone", PHONE, "pay_1")
    rotated = Vault.from_settings(
        new.encoded(), f" {DataKey.generate().encoded()}, {old.encoded()}"
    )
    assert rotated.open("phone", sealed, "pay_1") == PHONE
    assert rotated.key_id(rotated.seal("phone", PHONE, "pay_1")) == new.id != old.id


@pytest.mark.parametrize(
    ("field", "same", "other"),
    [
        ("email", ["li@example.com", " LI@Example.COM "], "li2@example.com"),
        ("phone", ["+8613812345678", "+86 138 1234 5678", "0086-138-1234-5678"], "+8613812345679"),
    ],
)
def test_the_blind_index_matches_one_contact_however_written(
    field: pii.Field, same: list[str], other: str
) -> None:
    key = DataKey.generate()
    vault = Vault(key)
    indexes = {vault.blind_index(field, v) for v in same}
    assert len(indexes) == 1 and None not in indexes
    assert vault.blind_index(field, other) not in indexes
    assert Vault(DataKey.generate()).blind_index(field, same[0]) not in indexes  # keyed
    assert Vault(None).blind_index(field, same[0]) is None


@pytest.mark.parametrize(
    ("current", "old", "words"),
    [
        ("not base64!", None, "PAYMEND_DATA_KEY: not base64"),
        ("c2hvcnQ=", None, "PAYMEND_DATA_KEY: must be base64 of 32 bytes, got 5"),
        (None, DataKey.generate().encoded(), "PAYMEND_DATA_KEYS_OLD is set but PAYMEND_DATA_KEY"),
        (DataKey.generate().encoded(), "c2hvcnQ=", "PAYMEND_DATA_KEYS_OLD: must be base64"),
    ],
    # fixed names: a generated key in a test's id would differ between runs
    ids=["not-base64", "short", "old-without-current", "old-short"],
)
def test_a_malformed_key_is_refused_with_its_variable(
    current: str | None, old: str | None, words: str
) -> None:
    with pytest.raises(DataKeyError, match=words):
        Vault.from_settings(current, old)


# -- the store ----------------------------------------------------------------------------


def test_the_row_holds_no_clear_contact_and_the_sealed_values_open(store: Store) -> None:
    mid, _ = make_merchant(store)
    key = DataKey.generate()
    vault = Vault(key)
    store.run_sync(lambda c: repo.insert_payment(c, a_payment(mid), NOW, vault))
    row = raw_row(store, "pay_1")
    assert row.customer == {
        "id": "c1",
        "locale": "zh-CN",
        "phone": "+86****5678",
        "email": "L***@Example.com",
    }
    assert row.customer_email_sealed.startswith(f"pm1.{key.id}.")
    assert row.customer_email_index == vault.blind_index("email", "li.wei@example.com")
    assert row.customer_phone_index == vault.blind_index("phone", "+8613812345678")
    stored = everything_stored(store)
    assert not any(c in stored for c in CLEAR)
    contact = store.run_sync(lambda c: pii.contact(c, vault, "pay_1"))
    assert contact == pii.Contact(EMAIL, PHONE)
    got = store.run_sync(lambda c: repo.get_payment(c, "pay_1"))
    assert (got.customer.email, got.customer.phone) == (None, None)  # never read back


def test_without_a_key_only_masked_forms_are_stored(store: Store) -> None:
    mid, _ = make_merchant(store)
    store.run_sync(lambda c: repo.insert_payment(c, a_payment(mid), NOW, Vault(None)))
    row = raw_row(store, "pay_1")
    assert row.customer["email"] == "L***@Example.com"
    assert (row.customer_email_sealed, row.customer_phone_sealed) == (None, None)
    assert (row.customer_email_index, row.customer_phone_index) == (None, None)
    assert not any(c in everything_stored(store) for c in CLEAR)


def test_an_update_never_touches_the_sealed_columns(store: Store) -> None:
    mid, _ = make_merchant(store)
    vault = Vault(DataKey.generate())
    store.run_sync(lambda c: repo.insert_payment(c, a_payment(mid), NOW, vault))
    before = raw_row(store, "pay_1")

    def fail(conn: sa.Connection) -> None:
        p = repo.get_payment(conn, "pay_1")  # holds masked forms only
        p.transition(PaymentStatus.FAILED)
        p.failure_code = "generic_decline"
        repo.update_payment(conn, p, NOW)

    store.run_sync(fail)
    after = raw_row(store, "pay_1")
    assert after.status == "failed"
    for col in (
        "customer",
        *(f"customer_{f}_{k}" for f in pii.FIELDS for k in ("sealed", "index")),
    ):
        assert getattr(after, col) == getattr(before, col)
    assert store.run_sync(lambda c: pii.contact(c, vault, "pay_1")).email == EMAIL


def test_reseal_moves_every_row_to_the_current_key(store: Store) -> None:
    mid, _ = make_merchant(store)
    old, new = DataKey.generate(), DataKey.generate()
    for i in range(3):
        p = a_payment(mid, f"pay_{i}")
        store.run_sync(partial(repo.insert_payment, p=p, now=NOW, vault=Vault(old)))
    no_contact = replace(a_payment(mid, "pay_x"), customer=Customer("c9"))
    store.run_sync(lambda c: repo.insert_payment(c, no_contact, NOW, Vault(old)))
    rotated = Vault(new, [old])
    assert store.run_sync(lambda c: pii.reseal(c, rotated, limit=2)) == 2
    assert store.run_sync(lambda c: pii.reseal(c, rotated)) == 1
    assert store.run_sync(lambda c: pii.reseal(c, rotated)) == 0
    only_new = Vault(new)
    for i in range(3):
        row = raw_row(store, f"pay_{i}")
        assert only_new.key_id(row.customer_phone_sealed) == new.id
        assert row.customer_email_index == only_new.blind_index("email", EMAIL)
        got = store.run_sync(partial(pii.contact, vault=only_new, payment_id=f"pay_{i}"))
        assert got == pii.Contact(EMAIL, PHONE)


def test_escalation_matches_a_customer_by_email_or_phone_without_decrypting(store: Store) -> None:
    mid, _ = make_merchant(store)
    vault = Vault(DataKey.generate())

    def failed(pid: str, **customer: str) -> Payment:
        p = replace(a_payment(mid, pid), customer=Customer(**customer))
        p.transition(PaymentStatus.FAILED)
        p.failure_code = "expired_card"
        store.run_sync(lambda c: repo.insert_payment(c, p, NOW, vault))
        return p

    failed("pay_1", email="li@example.com")
    failed("pay_2", phone="+8613812345678")
    failed("pay_3", email="zhao@example.com")
    by_email = failed("pay_4", email="LI@example.com")
    by_phone = failed("pay_5", phone="+86 138 1234 5678", email="li@example.com")
    stranger = failed("pay_6", email="qian@example.com")
    window = NOW - NOW.replace(hour=0)

    def count(p: Payment) -> int:
        return store.run_sync(lambda c: repo.recent_failures(c, p, window))

    assert count(by_email) == 2  # pay_1 by email; pay_5 by email too (same instant)
    assert count(by_phone) == 3  # pay_2 by phone, pay_1 and pay_4 by email
    assert count(stranger) == 0


# -- the migration ------------------------------------------------------------------------


@pytest.mark.parametrize("with_key", [True, False])
def test_the_migration_seals_or_masks_existing_rows(
    db_url: str, with_key: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database that already holds payments with clear contact details, upgraded."""
    downgrade(db_url, "0006")
    engine = sa.create_engine(db_url)
    old_customer = {
        "id": "c1",
        "locale": "zh-CN",
        "phone": "+8613812345678",
        "email": "li@example.com",
    }
    try:
        with engine.begin() as conn:  # only the columns of revision 0006
            old_merchants = sa.table(  # revision 0006's merchants, before keys moved out
                "merchants",
                *(sa.column(c) for c in ("id", "name", "api_key_hash", "api_key_hint")),
                sa.column("settings", JSON),
                sa.column("created_at", UTCDateTime()),
            )
            conn.execute(
                old_merchants.insert().values(
                    id="mer_1",
                    name="shop",
                    api_key_hash="h",
                    api_key_hint="sk_…",
                    settings={},
                    created_at=NOW,
                )
            )
            for pid, customer in (("pay_0", old_customer), ("pay_1", {"id": "c2"})):
                conn.execute(
                    payments.insert().values(
                        id=pid,
                        merchant_id="mer_1",
                        order_id=pid,
                        amount=100,
                        currency="CNY",
                        method="card",
                        status="failed",
                        amount_refunded=0,
                        amount_refund_pending=0,
                        customer=customer,
                        customer_id=customer["id"],
                        metadata={},
                        version=0,
                        created_at=NOW,
                        updated_at=NOW,
                    )
                )
        key = DataKey.generate()
        if with_key:
            monkeypatch.setenv("PAYMEND_DATA_KEY", key.encoded())
        else:
            monkeypatch.delenv("PAYMEND_DATA_KEY", raising=False)
    finally:
        engine.dispose()
        upgrade(db_url)  # back to head whatever happened: later tests share the database
    store = Store(db_url, inline=True)
    try:
        row = raw_row(store, "pay_0")
        assert row.customer["phone"] == "+86****5678" and row.customer["id"] == "c1"
        assert not any(c in everything_stored(store) for c in ("li@example.com", "13812345678"))
        if with_key:
            contact = store.run_sync(lambda c: pii.contact(c, Vault(key), "pay_0"))
            assert contact == pii.Contact("li@example.com", "+8613812345678")
            assert row.customer_phone_index == Vault(key).blind_index("phone", "+8613812345678")
        else:
            assert row.customer_email_sealed is None and row.customer_email_index is None
        untouched = raw_row(store, "pay_1")
        assert untouched.customer == {"id": "c2"} and untouched.customer_email_sealed is None
    finally:
        store.close()
