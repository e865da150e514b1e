"""Customer notices link to the status page: the shipped policy sends paymend's own
signed link, `{customers.public_url}/pay/{token}`, and a policy's `status_url` with
`{token}` a signed link of its own; a link that cannot be made refuses to start."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from paymend.config import load_config
from paymend.datafiles import DataFileError
from paymend.domain.status_links import verify
from paymend.engine.clock import LoopClock
from paymend.engine.notice_setup import build_customer_notices
from paymend.store.database import Store
from paymend.store.pii import DataKey
from tests.api.conftest import bound_socket
from tests.customers.conftest import SHOP_CONFIG, shop_server
from tests.helpers import NOW, ManualClock, service, simulator
from tests.notify.test_email_channel import Inbox
from tests.notify.test_email_channel import smtp as smtp  # the SMTP server fixture
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


def test_a_failed_payments_email_under_the_shipped_policy_opens_its_status_page(
    tmp_path: Path, sqlite_template: Path, smtp: tuple[Inbox, int]
) -> None:
    """The whole way: a late failure, the shipped policy's email through a real SMTP
    server, and its link followed to the page, which tells the customer in 简体中文 what
    happened and what to do."""
    inbox, port = smtp
    db = tmp_path / "paymend.db"
    shutil.copy(sqlite_template, db)
    sock = bound_socket()
    public = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = {
        **SHOP_CONFIG,
        "customers": {**SHOP_CONFIG["customers"], "public_url": public},
        "notifications": {
            "email": f"mailto://shop@127.0.0.1:{port}?mode=insecure&from=shop@example.com"
        },
    }
    clock = ManualClock(NOW)  # 20:00 in Shanghai: before the shipped quiet hours
    with shop_server(db, clock, config, sock, data_key=DataKey.generate().encoded()) as shop:
        paid = shop.pay("sim_timeout", "order-mail")
        assert paid["status"] == "processing"

        async def worker() -> None:  # status queries, then the failure's 2-minute hold
            runtime = shop.server.runtime
            for _ in range(10):
                clock.advance(60)
                await runtime.presence.tick()  # the process's heartbeat, at the moved clock
                await runtime.worker.sweep()
                if inbox.mails:
                    return

        shop.on_server(worker())
        ((envelope, mail),) = inbox.mails
        assert envelope.rcpt_tos == ["li@example.com"]
        html = mail.get_body(("html",))
        assert html is not None
        links = re.findall(r'href="([^"]+)"', html.get_content())
        (link,) = [u for u in links if "/pay/" in u]
        assert link.startswith(f"{public}/pay/") and link.endswith("?lang=zh-CN")
        assert paid["id"] not in link  # a signed token, not the bare payment id
        with httpx.Client(timeout=30) as customer:
            page = customer.get(link)
        assert page.status_code == 200
        assert 'data-state="failed"' in page.text and "order-mail" in page.text
        said = shop.server.runtime.service.classifier.messages.render(
            "provider_timeout", "zh-CN", support_contact=None
        )
        assert said.title in page.text and '<html lang="zh-CN"' in page.text
        assert "https://shop.example/checkout?order=order-mail" in page.text  # another method


def test_the_shipped_policy_links_to_paymends_page_and_needs_the_key_and_url(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAYMEND_ALIYUN_SMS_ACCESS_KEY_ID", "ak")
    monkeypatch.setenv("PAYMEND_ALIYUN_SMS_ACCESS_KEY_SECRET", "sk")
    shipped = CONFIG.replace("  policy: notifications.yaml\n", "")
    (tmp_path / "paymend.yaml").write_text(shipped, encoding="utf-8")
    config = load_config(tmp_path / "paymend.yaml").notifications
    assert config.policy is None
    clock = LoopClock()
    svc = service(store, {"sim_a": simulator(clock=clock)}, clock)
    path = tmp_path / "paymend.yaml"
    for key, url in ((None, "https://pay.shop.cn"), (KEY, None)):
        with pytest.raises(DataFileError, match=r"PAYMEND_LINK_KEY and customers\.public_url"):
            build_customer_notices(config, path, svc, clock, link_key=key, public_url=url)
    notices = build_customer_notices(
        config, path, svc, clock, link_key=KEY, link_ttl_s=3600, public_url="https://pay.shop.cn/"
    )
    assert notices is not None
    url = notices.status_url("pay_123", NOW, "zh-CN")
    assert url.startswith("https://pay.shop.cn/pay/") and url.endswith("?lang=zh-CN")
    token = url.removeprefix("https://pay.shop.cn/pay/").removesuffix("?lang=zh-CN")
    assert verify(KEY, token, NOW + timedelta(minutes=59)).payment_id == "pay_123"
