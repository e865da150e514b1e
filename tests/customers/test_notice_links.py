"""Customer notices link to the status page: a policy's `status_url` with `{token}`
carries a signed link to the payment, and without a link key the policy is refused."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from paymend.config import load_config
from paymend.datafiles import DataFileError
from paymend.domain.status_links import verify
from paymend.engine.clock import LoopClock
from paymend.engine.notice_setup import build_customer_notices
from paymend.store.database import Store
from tests.helpers import NOW, service, simulator
from tests.test_config_notifications import CONFIG, POLICY

KEY = b"notice-link-key"


@pytest.fixture
def store(sqlite_url: str) -> Iterator[Store]:
    s = Store(sqlite_url, inline=True)
    yield s
    s.close()


def test_a_notice_links_to_the_payments_own_page(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAYMEND_ALIYUN_SMS_ACCESS_KEY_ID", "ak")
    monkeypatch.setenv("PAYMEND_ALIYUN_SMS_ACCESS_KEY_SECRET", "sk")
    (tmp_path / "paymend.yaml").write_text(CONFIG, encoding="utf-8")
    policy = POLICY.replace(
        "https://shop.example/p/{payment_id}", "https://pay.shop.cn/pay/{token}"
    )
    (tmp_path / "notifications.yaml").write_text(policy, encoding="utf-8")
    config = load_config(tmp_path / "paymend.yaml").notifications
    clock = LoopClock()
    svc = service(store, {"sim_a": simulator(clock=clock)}, clock)
    with pytest.raises(DataFileError, match="PAYMEND_LINK_KEY"):
        build_customer_notices(config, tmp_path / "paymend.yaml", svc, clock)
    notices = build_customer_notices(
        config, tmp_path / "paymend.yaml", svc, clock, link_key=KEY, link_ttl_s=3600
    )
    assert notices is not None
    url = notices.status_url("pay_123", NOW)
    assert url.startswith("https://pay.shop.cn/pay/")
    token = url.removeprefix("https://pay.shop.cn/pay/")
    assert verify(KEY, token, NOW + timedelta(minutes=59)).payment_id == "pay_123"
    assert verify(KEY, token, NOW + timedelta(hours=1)).payment_id is None
