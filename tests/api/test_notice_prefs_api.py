"""Merchants record a customer's notice preferences: opt-outs per channel and the WeChat
openid, stored sealed and shown masked; bad requests change nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from paymend.config import PaymendConfig, Settings
from paymend.engine.runtime import build_runtime
from paymend.store import notice_prefs
from paymend.store.pii import DataKey
from tests.api.conftest import CONFIG, Server, running
from tests.helpers import count_rows

OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
PATH = "/v1/customers/c-42/notice-preferences"


@pytest.fixture
def server(db_url: str) -> Iterator[Server]:
    settings = Settings(database_url=db_url, data_key=DataKey.generate().encoded())
    with running(build_runtime(settings, PaymendConfig.model_validate(CONFIG))) as started:
        yield started


def test_opt_outs_and_the_openid_are_recorded_sealed_and_shown_masked(server: Server) -> None:
    with server.client() as shop:
        assert shop.get(PATH).json() == {
            "object": "notice_preferences",
            "customer_id": "c-42",
            "opt_out": [],
            "wechat_openid": None,
        }
        put = shop.post(PATH, json={"opt_out": ["sms", "email", "sms"], "wechat_openid": OPENID})
        assert put.status_code == 200, put.text
        assert put.json()["opt_out"] == ["email", "sms"]
        assert put.json()["wechat_openid"] == "oUpF…WeS6o"[:4] + "…" + OPENID[-4:]
        kept = shop.post(PATH, json={"opt_out": []})  # the openid is left as it was
        assert kept.json()["opt_out"] == [] and kept.json()["wechat_openid"]
        assert shop.get(PATH).json() == kept.json()
    runtime = server.runtime
    found = runtime.store.run_sync(
        lambda c: notice_prefs.load(c, runtime.service.pii, server.merchant_id, "c-42")
    )
    assert found.wechat_openid == OPENID  # sealed at rest, opened for sending only
    with runtime.store.engine.connect() as conn:
        raw = conn.exec_driver_sql("SELECT wechat_openid_sealed FROM customer_notice_prefs")
        assert OPENID not in str(raw.scalar_one())
    with server.client() as shop:
        assert shop.post(PATH, json={"wechat_openid": None}).json()["wechat_openid"] is None


@pytest.mark.parametrize(
    "body",
    [{"opt_out": ["pigeon"]}, {"wechat_openid": "no spaces!"}, {"opt_out": "sms"}, {"x": 1}],
)
def test_a_bad_preference_is_refused_and_changes_nothing(
    server: Server, body: dict[str, object]
) -> None:
    before = count_rows(server.runtime.store)
    with server.client() as shop:
        refused = shop.post(PATH, json=body)
    assert refused.status_code == 400 and refused.json()["error"]["code"]
    assert count_rows(server.runtime.store) == before
