"""What a shop's customer asked of its notices: the channels they opted out of, and the
WeChat openid subscription messages reach them at.

Keyed by (merchant, the shop's customer id), as payments name their customer. The
openid is sealed under the data key like phone and email (store/pii.py), with the
customer's key as the associated data, so a sealed value moved to another row does not
open; without a data key only its masked form is kept and WeChat is skipped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from paymend.domain.masking import mask_token
from paymend.store.pii import PREFIX, DataKeyError, SealedValueError, Vault
from paymend.store.tables import customer_notice_prefs as prefs_table

KEEP: Any = object()  # `save`: leave the stored openid as it is


@dataclass(frozen=True, slots=True)
class Prefs:
    opt_out: frozenset[str] = field(default_factory=frozenset)
    wechat_openid: str | None = None  # in clear: only for sending, never logged
    wechat_openid_masked: str | None = None

    def as_dict(self, customer_id: str) -> dict[str, Any]:
        return {
            "object": "notice_preferences",
            "customer_id": customer_id,
            "opt_out": sorted(self.opt_out),
            "wechat_openid": self.wechat_openid_masked,
        }


def _aad_id(merchant_id: str, customer_id: str) -> str:
    return f"customer:{merchant_id}:{customer_id}"


def load(conn: Connection, vault: Vault, merchant_id: str, customer_id: str) -> Prefs:
    """The customer's preferences; none stored: every channel, no openid. An openid no
    configured key opens reads as none (WeChat is skipped, the rest goes on)."""
    row = conn.execute(
        sa.select(prefs_table).where(
            prefs_table.c.merchant_id == merchant_id, prefs_table.c.customer_id == customer_id
        )
    ).first()
    if row is None:
        return Prefs()
    openid = None
    if row.wechat_openid_sealed and vault.enabled:
        try:
            openid = vault.open(
                "openid", row.wechat_openid_sealed, _aad_id(merchant_id, customer_id)
            )
        except SealedValueError:
            openid = None
    return Prefs(frozenset(row.opt_out), openid, row.wechat_openid_masked)


def save(
    conn: Connection,
    vault: Vault,
    merchant_id: str,
    customer_id: str,
    now: datetime,
    *,
    opt_out: Iterable[str] | None = None,
    wechat_openid: str | None = KEEP,
) -> Prefs:
    """Replace the opt-outs (None: keep them) and the openid (KEEP: keep it; None: forget
    it). Returns what is stored now."""
    current = conn.execute(
        sa.select(prefs_table)
        .where(prefs_table.c.merchant_id == merchant_id, prefs_table.c.customer_id == customer_id)
        .with_for_update()
    ).first()
    values: dict[str, Any] = {"updated_at": now}
    values["opt_out"] = (
        sorted(set(opt_out))
        if opt_out is not None
        else (list(current.opt_out) if current is not None else [])
    )
    if wechat_openid is not KEEP:
        sealed = None
        if wechat_openid and vault.enabled:
            sealed = vault.seal("openid", wechat_openid, _aad_id(merchant_id, customer_id))
        values["wechat_openid_sealed"] = sealed
        values["wechat_openid_masked"] = mask_token(wechat_openid) if wechat_openid else None
    if current is None:
        conn.execute(
            prefs_table.insert(),
            {"merchant_id": merchant_id, "customer_id": customer_id, **values},
        )
    else:
        conn.execute(
            prefs_table.update()
            .where(
                prefs_table.c.merchant_id == merchant_id,
                prefs_table.c.customer_id == customer_id,
            )
            .values(**values)
        )
    return load(conn, vault, merchant_id, customer_id)


def reseal(conn: Connection, vault: Vault, limit: int = 500) -> int:
    """Move up to `limit` openids sealed under an older key to the current one (`paymend
    pii reseal`, after a rotation); returns how many moved (0: every openid is current).
    An openid no configured key opens raises SealedValueError: nothing is dropped."""
    if vault.current is None:
        raise DataKeyError("PAYMEND_DATA_KEY is not set: nothing to reseal under")
    sealed = prefs_table.c.wechat_openid_sealed
    rows = conn.execute(
        sa.select(prefs_table.c.merchant_id, prefs_table.c.customer_id, sealed)
        .where(sealed.is_not(None), sealed.not_like(f"{PREFIX}.{vault.current.id}.%"))
        .order_by(prefs_table.c.merchant_id, prefs_table.c.customer_id)
        .limit(limit)
    ).all()
    for merchant_id, customer_id, old in rows:
        aad = _aad_id(merchant_id, customer_id)
        conn.execute(
            prefs_table.update()
            .where(
                prefs_table.c.merchant_id == merchant_id,
                prefs_table.c.customer_id == customer_id,
            )
            .values(wechat_openid_sealed=vault.seal("openid", vault.open("openid", old, aad), aad))
        )
    return len(rows)
