"""Migration 0009 upgrades a database that already holds data: merchants' keys keep
working from their new table, duplicate merchant names and identical active controls are
resolved, old holds keep holding, and the database then refuses new duplicates."""

from __future__ import annotations

from datetime import timedelta
from functools import partial

import pytest
import sqlalchemy as sa

from paymend.domain.ids import MerchantId
from paymend.domain.money import Money
from paymend.engine.controls import route_controls
from paymend.store import controls, keys, merchants
from paymend.store.database import Store
from paymend.store.migrate import downgrade, upgrade
from tests.helpers import NOW


def test_0009_upgrades_a_database_with_data(empty_url: str) -> None:
    upgrade(empty_url, "0006")
    engine = sa.create_engine(empty_url)
    with engine.begin() as conn:
        for i, (mid, name) in enumerate(
            [("mer_1", "shop"), ("mer_2", "shop"), ("mer_3", "other"), ("mer_4", "shop")]
        ):
            conn.execute(
                sa.text(
                    "INSERT INTO merchants (id, name, api_key_hash, api_key_hint, settings,"
                    " created_at) VALUES (:id, :name, :hash, :hint, '{}', :at)"
                ),
                {
                    "id": mid,
                    "name": name,
                    "hash": keys.hash_key(f"sk_secret_{mid}"),
                    "hint": f"sk_…{mid}",
                    "at": NOW + timedelta(minutes=i),
                },
            )
        for i, (cid, value, ended) in enumerate(
            [
                ("ctl_1", "CMB", None),
                ("ctl_2", "CMB", None),
                ("ctl_3", "CMB", NOW),
                ("ctl_4", "ICBC", None),
            ]
        ):
            conn.execute(
                sa.text(
                    "INSERT INTO controls (id, kind, scope, value, method, reason, set_by,"
                    " created_at, ended_at) VALUES (:id, 'pause', 'bank', :value, NULL, 'r',"
                    " 'ops-lin', :at, :ended)"
                ),
                {"id": cid, "value": value, "at": NOW + timedelta(minutes=i), "ended": ended},
            )
        conn.execute(
            sa.text(
                "INSERT INTO controls (id, kind, scope, value, method, reason, set_by,"
                " created_at, amount_above) VALUES ('ctl_5', 'hold', 'region', 'CN-East',"
                " 'card', 'r', 'ops-lin', :at, 500000)"
            ),
            {"at": NOW},
        )
    engine.dispose()

    upgrade(empty_url)

    store = Store(empty_url, inline=True)
    try:
        for mid in ("mer_1", "mer_2", "mer_3", "mer_4"):  # every key still works
            found = store.run_sync(
                partial(merchants.by_api_key, api_key=f"sk_secret_{mid}", now=NOW)
            )
            assert found is not None and found.id == mid
        names: dict[str, str] = store.run_sync(
            lambda c: dict(c.execute(sa.text("SELECT id, name FROM merchants")).all())
        )
        assert names == {
            "mer_1": "shop",  # the oldest keeps its name
            "mer_2": "shop (mer_2)",
            "mer_3": "other",
            "mer_4": "shop (mer_4)",
        }
        active = store.run_sync(controls.active)
        assert sorted(c.id for c in active) == ["ctl_1", "ctl_4", "ctl_5"]  # ctl_2 was ctl_1
        audit = store.run_sync(controls.audit_entries)
        assert [(e["actor"], e["action"], e["details"]) for e in audit] == [
            ("paymend:migration-0009", "control.pause.end", {"id": "ctl_2", "kept": "ctl_1"})
        ]
        old_hold = next(c for c in active if c.id == "ctl_5")
        assert old_hold.currency is None  # as before: every currency above 500000
        for currency in ("CNY", "KRW"):
            routed = route_controls([old_hold], "card", None, "CN-East", Money(500_001, currency))
            assert routed.held_because is not None

        with pytest.raises(sa.exc.IntegrityError):
            store.run_sync(
                lambda c: c.execute(
                    sa.text(
                        "INSERT INTO merchants (id, name, settings, created_at)"
                        " VALUES ('mer_5', 'other', '{}', :at)"
                    ),
                    {"at": NOW},
                )
            )
        with pytest.raises(sa.exc.IntegrityError):
            store.run_sync(
                lambda c: c.execute(
                    sa.text(
                        "INSERT INTO controls (id, kind, scope, value, reason, set_by, created_at,"
                        " signature) VALUES ('ctl_6', 'pause', 'bank', 'CMB', 'r', 'x', :at,"
                        " :signature)"
                    ),
                    {"at": NOW, "signature": next(c for c in active if c.id == "ctl_1").signature},
                )
            )
    finally:
        store.close()


def test_0009_downgrades_to_one_key_per_merchant(empty_url: str) -> None:
    upgrade(empty_url)
    store = Store(empty_url, inline=True)
    try:
        store.run_sync(lambda c: merchants.create(c, MerchantId("mer_1"), "shop", NOW))
        _, second = store.run_sync(
            lambda c: keys.issue(c, keys.MERCHANT, "mer_1", NOW + timedelta(seconds=1))
        )
    finally:
        store.close()
    downgrade(empty_url, "0006")
    engine = sa.create_engine(empty_url)
    with engine.connect() as conn:
        kept = conn.execute(sa.text("SELECT api_key_hash FROM merchants")).scalar_one()
    engine.dispose()
    assert kept == keys.hash_key(second)  # the newest key still working
    upgrade(empty_url)  # and up again
