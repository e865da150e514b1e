"""A database error never carries the statement's parameters (hide_parameters), so no
message built from it lists a token, metadata or customer data. The database's own text
may still quote a value (PostgreSQL's "Failing row contains (…)"): that is why a log line
carries an error's type and never its message (tests/test_observability.py)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from paymend.store.database import Store
from paymend.store.tables import merchants

SECRET = "tok_live_secret_c0ffee"


def test_a_failed_statement_hides_its_parameters(db_url: str) -> None:
    store = Store(db_url, inline=True)
    try:
        with pytest.raises(sa.exc.DBAPIError) as info:
            # name is NOT NULL: the database refuses the row
            store.run_sync(lambda conn: conn.execute(merchants.insert().values(id=SECRET)))
        assert "[parameters:" not in str(info.value)
        assert "SQL parameters hidden" in str(info.value)
    finally:
        store.close()


@pytest.mark.postgres
def test_a_nul_character_on_postgresql_hides_its_parameters(postgres_url: str) -> None:
    store = Store(postgres_url, inline=True)
    try:
        with pytest.raises(sa.exc.StatementError) as info:
            store.run_sync(
                lambda conn: conn.execute(
                    sa.text("SELECT CAST(:a AS TEXT), CAST(:b AS TEXT)"),
                    {"a": "x\x00", "b": SECRET},
                )
            )
        assert SECRET not in str(info.value)
        assert "SQL parameters hidden" in str(info.value)
    finally:
        store.close()
