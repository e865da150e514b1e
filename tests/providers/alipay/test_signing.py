"""RSA2 as Alipay signs: the sorted `k=v&…` string, and the raw text of an answer's node."""

from __future__ import annotations

import json

from paymend.providers.alipay import signing
from tests.providers.alipay.face import keys


def test_the_signed_string_is_sorted_without_sign_and_empty_values() -> None:
    params = {"method": "alipay.trade.pay", "app_id": "2021", "sign": "x", "notify_url": ""}
    params["biz_content"] = '{"a":1}'
    assert signing.sign_content(params) == 'app_id=2021&biz_content={"a":1}&method=alipay.trade.pay'
    notify = {"trade_status": "TRADE_SUCCESS", "sign_type": "RSA2", "sign": "s", "app_id": "1"}
    assert signing.sign_content(notify, ("sign", "sign_type")) == (
        "app_id=1&trade_status=TRADE_SUCCESS"
    )


def test_a_signature_verifies_with_the_public_half_only() -> None:
    private = keys().app_private
    signature = signing.sign(private, "a=1&b=2")
    assert signing.verify(private.public_key(), "a=1&b=2", signature)
    assert not signing.verify(private.public_key(), "a=1&b=3", signature)
    assert not signing.verify(keys().alipay_private.public_key(), "a=1&b=2", signature)
    assert not signing.verify(private.public_key(), "a=1&b=2", "not base64!")


def test_keys_load_from_pem_or_bare_base64() -> None:
    pem = keys().credentials()["app_private_key"]
    bare = "".join(line for line in pem.splitlines() if not line.startswith("-----"))
    assert signing.load_private_key(bare).private_numbers() == (
        signing.load_private_key(pem).private_numbers()
    )
    public = keys().credentials()["alipay_public_key"]
    bare_public = "".join(line for line in public.splitlines() if not line.startswith("-----"))
    assert signing.load_public_key(bare_public).public_numbers() == (
        signing.load_public_key(public).public_numbers()
    )


def test_the_answer_node_is_cut_out_as_sent() -> None:
    node = '{ "code":"10000", "msg":"Success", "total_amount":"88.88", "n": {"x": [1, "}"]} }'
    body = f'{{"alipay_trade_pay_response":{node},"sign":"abc"}}'
    assert signing.response_node(body, "alipay_trade_pay_response") == node
    assert json.loads(signing.response_node(body, "alipay_trade_pay_response") or "")["n"]
    assert signing.response_node(body, "alipay_trade_query_response") is None
