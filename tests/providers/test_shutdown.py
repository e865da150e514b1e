"""At the runtime's stop (the server's lifespan end) every connector's pooled HTTP
clients are closed, on the loop that used them: Alipay, WeChat Pay and Adyen behind
their simulator faces, reached through paymend's real HTTP API. (Stripe's is in
tests/providers/stripe/test_api_actions.py, against localstripe.)"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from paymend.providers.http_pool import LoopClients
from tests.providers.adyen import face as adyen
from tests.providers.alipay import face as alipay
from tests.providers.harness import connected
from tests.providers.wechatpay import face as wechatpay

CASES: dict[str, tuple[Any, dict[str, Any], str, dict[str, Any]]] = {
    "alipay": (
        alipay,
        {"type": "alipay", "app_id": alipay.keys().app_id},
        "/gateway.do",
        {"amount": 1999, "currency": "CNY", "method": "alipay", "payment_token": "sim_approve"},
    ),
    "wechatpay": (
        wechatpay,
        {"type": "wechatpay", **wechatpay.keys().options()},
        "",
        {"amount": 1999, "currency": "CNY", "method": "wechat_pay", "payment_token": "sim_approve"},
    ),
    "adyen": (
        adyen,
        {
            "type": "adyen",
            "merchant_account": adyen.keys().merchant_account,
            "return_url": "https://shop.example.com/back",
            "currencies": ["EUR"],
        },
        "",
        {"amount": 1999, "currency": "EUR", "method": "card", "payment_token": "sim_approve"},
    ),
}


def pools(provider: object) -> LoopClients:
    client = getattr(provider, "client", None)
    pool = getattr(client, "_pool", None)
    assert isinstance(pool, LoopClients)
    return pool


@pytest.mark.parametrize("kind", sorted(CASES))
def test_the_connectors_http_clients_are_closed_at_the_stop(
    kind: str, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    module, channel_options, path, body = CASES[kind]

    def options(face_url: str, notify_url: str) -> dict[str, Any]:
        return {**channel_options, "base_url": face_url + path}

    with connected(
        db_url,
        monkeypatch,
        channel=f"{kind}_x",
        options=options,
        credentials=module.keys().credentials(),
        body={**body, "customer": {"id": "c-1"}},
        face=module.face(),
    ) as c:
        assert c.pay("sim_approve", "order-ok")["status"] == "succeeded"
        used: list[httpx.AsyncClient] = list(
            pools(c.server.runtime.providers[c.channel])._clients.values()
        )
        assert len(used) == 1 and not used[0].is_closed  # the server loop's one client
    assert used[0].is_closed
