"""A customer's notice preferences as the shop records them: the channels they opted out
of, and their WeChat openid (store/notice_prefs.py keeps it sealed). Customer notices
read them at delivery (engine/customer_notices.py)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from paymend.domain.clock import Clock
from paymend.observability import get_logger
from paymend.store import notice_prefs as repo
from paymend.store.database import Store
from paymend.store.pii import Vault

log = get_logger("paymend.notice_prefs")
KEEP = repo.KEEP


async def read(store: Store, vault: Vault, merchant_id: str, customer_id: str) -> repo.Prefs:
    return await store.run(lambda conn: repo.load(conn, vault, merchant_id, customer_id))


async def record(
    store: Store,
    vault: Vault,
    clock: Clock,
    merchant_id: str,
    customer_id: str,
    *,
    opt_out: Iterable[str] | None,
    wechat_openid: Any = KEEP,
) -> repo.Prefs:
    """Replace the opt-outs (None: keep them) and the openid (KEEP: keep it; None: forget
    it); the log line names the channels, never the openid."""
    now = clock.now()
    saved = await store.run(
        lambda conn: repo.save(
            conn,
            vault,
            merchant_id,
            customer_id,
            now,
            opt_out=opt_out,
            wechat_openid=wechat_openid,
        )
    )
    log.info(
        "notice_prefs_recorded",
        merchant_id=merchant_id,
        opt_out=sorted(saved.opt_out),
        wechat=saved.wechat_openid_masked is not None,
    )
    return saved
