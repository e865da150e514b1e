"""Migration 0026: the payments' search indexes hold only the payments that have the
searched value, and searches find the same payments before, after and back."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from paymend.domain.ids import MerchantId
from paymend.store.listing import PaymentQuery, payments_page
from paymend.store.migrate import downgrade, upgrade
from paymend.store.tables import merchants, metadata, payments
from tests.store.rows import MERCHANT, NOW, payment_row

SPARSE = {
    "ix_payments_merchant_id_customer_id_created_at": "customer_id IS NOT NULL",
    "ix_payments_merchant_id_failure_code_created_at_id": "failure_code IS NOT NULL",
    "ix_payments_merchant_id_customer_email_index_created_at": ("customer_email_index IS NOT NULL"),
    "ix_payments_merchant_id_customer_phone_index_created_at": ("customer_phone_index IS NOT NULL"),
    "ix_payments_payment_token": "payment_token IS NOT NULL",
}


def _predicates(engine: sa.Engine, table: str) -> dict[str, str | None]:
    """Each index of `table` as migrated, and its predicate (None: not partial)."""
    found: dict[str, str | None] = {}
    for index in sa.inspect(engine).get_indexes(table):
        options = index.get("dialect_options", {})
        where = options.get("sqlite_where", options.get("postgresql_where"))
        found[str(index["name"])] = None if where is None else str(where)
    return found


def test_every_partial_index_of_the_tables_is_partial_as_migrated(db_url: str) -> None:
    """compare_metadata (test_repositories) sees an index's columns, not its predicate."""
    upgrade(db_url)
    engine = sa.create_engine(db_url)
    try:
        for table in metadata.sorted_tables:
            migrated = _predicates(engine, table.name)
            for index in table.indexes:
                options = index.dialect_options
                wanted = options["sqlite"]["where"]
                if wanted is None:
                    wanted = options["postgresql"]["where"]
                assert str(index.name) in migrated, index.name
                have = migrated[str(index.name)]
                assert (have is None) == (wanted is None), index.name
                if wanted is not None and engine.dialect.name == "sqlite":
                    assert have == str(wanted), index.name  # SQLite keeps the text as written
        for name, predicate in SPARSE.items():
            have = _predicates(engine, "payments")[name]
            assert have is not None and predicate in have.replace("(", "").replace(")", "")
    finally:
        engine.dispose()


def test_0026_keeps_every_search_answering_the_same(empty_url: str) -> None:
    upgrade(empty_url, "0025")
    engine = sa.create_engine(empty_url)
    mid = MerchantId("mer_1")  # MERCHANT, whose payments payment_row writes
    with engine.begin() as conn:
        conn.execute(merchants.insert(), MERCHANT)
        declined = {"status": "failed", "failure_code": "insufficient_funds", "customer_id": "c-1"}
        conn.execute(payments.insert(), payment_row("pay_1", **declined))
        later = NOW + timedelta(seconds=1)
        guest = payment_row("pay_2", payment_token=None, created_at=later, updated_at=later)
        conn.execute(payments.insert(), guest)
        latest = NOW + timedelta(seconds=2)
        again = {"customer_id": "c-1", "payment_token": None}
        conn.execute(payments.insert(), payment_row("pay_3", created_at=latest, **again))

    def found() -> dict[str, list[str]]:
        with engine.connect() as conn:

            def ids(query: PaymentQuery) -> list[str]:
                return [p.id for p in payments_page(conn, mid, query, 10)]

            return {
                "customer": ids(PaymentQuery(customer_id="c-1")),
                "failure": ids(PaymentQuery(failure_code="insufficient_funds")),
                "token": [
                    str(r.id)
                    for r in conn.execute(
                        sa.text("SELECT id FROM payments WHERE payment_token = :t"), {"t": "tok_1"}
                    )
                ],
            }

    before = found()
    assert before == {"customer": ["pay_3", "pay_1"], "failure": ["pay_1"], "token": ["pay_1"]}
    try:
        upgrade(empty_url)
        assert all(_predicates(engine, "payments")[name] is not None for name in SPARSE)
        assert found() == before
        downgrade(empty_url, "0025")
        assert all(_predicates(engine, "payments")[name] is None for name in SPARSE)
        assert found() == before
    finally:
        engine.dispose()
