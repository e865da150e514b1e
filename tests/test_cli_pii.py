"""The data key on the command line: paymend says at start whether customer contact
details are sealed or not stored, refuses a malformed key, makes keys and re-seals rows
under a rotated one (audit-logged)."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from paymend.cli import main
from paymend.domain.ids import MerchantId
from paymend.store import notice_prefs, pii
from paymend.store import payments as repo
from paymend.store.database import Store
from paymend.store.migrate import upgrade
from paymend.store.pii import DataKey, Vault
from paymend.store.tables import audit_log
from tests.helpers import NOW, make_merchant
from tests.store.test_pii import EMAIL, PHONE, a_payment, raw_row

OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
PAYMEND = str(Path(sys.executable).with_name("paymend"))


def started_worker(tmp_path: Path, **env: str) -> str:
    """Start `paymend worker` on a fresh SQLite file, return what it printed before it
    began working, then stop it (SIGTERM, as a process manager would)."""
    url = f"sqlite:///{tmp_path / 'paymend.db'}"
    upgrade(url)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PAYMEND_")}
    proc = subprocess.Popen(
        [PAYMEND, "worker"],
        env={**clean, "PAYMEND_DATABASE_URL": url, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    seen, deadline = "", time.monotonic() + 30
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stderr, selectors.EVENT_READ)
        while "at rest" not in seen and "NOT stored" not in seen and proc.poll() is None:
            if time.monotonic() > deadline:
                break
            if sel.select(timeout=1):
                seen += proc.stderr.readline()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    return seen


def test_without_a_key_paymend_says_at_start_that_contacts_are_not_stored(tmp_path: Path) -> None:
    said = started_worker(tmp_path)
    assert "PAYMEND_DATA_KEY is not set: customer email and phone are NOT stored" in said
    assert "paymend pii new-key" in said


def test_with_a_key_paymend_says_they_are_sealed(tmp_path: Path) -> None:
    key = DataKey.generate()
    said = started_worker(tmp_path, PAYMEND_DATA_KEY=key.encoded())
    assert f"sealed at rest (AES-256-GCM, data key {key.id})" in said
    assert key.encoded() not in said


def test_a_malformed_key_stops_paymend_before_it_starts(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'paymend.db'}"
    result = CliRunner().invoke(
        main, ["worker"], env={"PAYMEND_DATABASE_URL": url, "PAYMEND_DATA_KEY": "c2hvcnQ="}
    )
    assert result.exit_code == 1
    assert "PAYMEND_DATA_KEY: must be base64 of 32 bytes, got 5" in result.output


def test_new_key_prints_a_usable_key() -> None:
    result = CliRunner().invoke(main, ["pii", "new-key"])
    assert result.exit_code == 0
    first = DataKey.parse(result.output)
    again = DataKey.parse(CliRunner().invoke(main, ["pii", "new-key"]).output)
    assert first != again


def test_reseal_moves_rows_to_the_new_key_and_is_audited(db_url: str) -> None:
    store = Store(db_url, inline=True)
    old, new = DataKey.generate(), DataKey.generate()
    try:
        mid, _ = make_merchant(store)
        for i in range(3):
            p = a_payment(MerchantId(mid), f"pay_{i}")
            store.run_sync(partial(repo.insert_payment, p=p, now=NOW, vault=Vault(old)))
        for customer, openid in (("c-1", OPENID), ("c-2", None), ("c-3", OPENID[::-1])):
            store.run_sync(
                partial(
                    notice_prefs.save,
                    vault=Vault(old),
                    merchant_id=mid,
                    customer_id=customer,
                    now=NOW,
                    opt_out=["sms"],
                    wechat_openid=openid,
                )
            )
        env = {
            "PAYMEND_DATABASE_URL": db_url,
            "PAYMEND_DATA_KEY": new.encoded(),
            "PAYMEND_DATA_KEYS_OLD": old.encoded(),
        }
        result = CliRunner().invoke(main, ["pii", "reseal", "--batch", "2"], env=env)
        assert result.exit_code == 0, result.output
        assert f"3 payments and 2 WeChat openids resealed under data key {new.id}" in (
            result.output
        )
        for i in range(3):
            assert Vault(new).key_id(raw_row(store, f"pay_{i}").customer_email_sealed) == new.id
            contact = store.run_sync(partial(pii.contact, vault=Vault(new), payment_id=f"pay_{i}"))
            assert contact == pii.Contact(EMAIL, PHONE)
        # the old key is gone: the openids open under the new one alone, each on its row
        for customer, openid in (("c-1", OPENID), ("c-2", None), ("c-3", OPENID[::-1])):
            prefs = store.run_sync(
                partial(notice_prefs.load, vault=Vault(new), merchant_id=mid, customer_id=customer)
            )
            assert (prefs.wechat_openid, prefs.opt_out) == (openid, frozenset({"sms"}))
        audited = store.run_sync(
            lambda c: c.execute(sa.select(audit_log.c.action, audit_log.c.details)).all()
        )
        resealed = sorted((d["table"], d["rows"]) for a, d in audited if a == "pii.reseal")
        assert resealed == [("notice_prefs", 2), ("payments", 1), ("payments", 2)]
        none_left = CliRunner().invoke(main, ["pii", "reseal"], env=env)
        assert "0 payments and 0 WeChat openids resealed" in none_left.output
        no_key = CliRunner().invoke(
            main, ["pii", "reseal"], env={"PAYMEND_DATABASE_URL": db_url, "PAYMEND_DATA_KEY": None}
        )
        assert no_key.exit_code == 1 and "PAYMEND_DATA_KEY is not set" in no_key.output
    finally:
        store.close()


@pytest.mark.parametrize("args", [["pii"], ["pii", "new-key"], ["pii", "reseal"]])
def test_the_pii_commands_have_help(args: list[str]) -> None:
    result = CliRunner().invoke(main, [*args, "--help"])
    assert result.exit_code == 0 and "Usage: " in result.output
