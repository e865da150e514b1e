"""WeChat Pay API v3 signatures and the notification resource's AES-256-GCM, against
vectors made directly with `cryptography` (not with the code under test)."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from paymend.providers.wechatpay import signing
from tests.providers.wechatpay.face import keys

API_V3_KEY = "0123456789abcdef0123456789ABCDEF"
# AESGCM(API_V3_KEY).encrypt(b"abcdefghijkl", PLAIN, b"transaction"), base64
CIPHERTEXT = (
    "YOZ0/AYhCiKPoeP4ZKU2lzt/OKOe0SZpUoS3TxZ6qbi8TdLhHhmWxh4TcMvAsJLWk7R7Qs1+kz5aPJApEZA02g=="
)
PLAIN = b'{"out_trade_no":"att_1","trade_state":"SUCCESS"}'


def test_the_request_message_is_method_path_timestamp_nonce_body_each_on_a_line() -> None:
    message = signing.request_message(
        "GET", "/v3/pay/transactions/out-trade-no/att_1?mchid=1900000109", "1554208460",
        "593BEC0C930BF1AFEB40B4A08C8FB242", "",
    )  # fmt: skip
    assert message == (
        "GET\n/v3/pay/transactions/out-trade-no/att_1?mchid=1900000109\n1554208460\n"
        "593BEC0C930BF1AFEB40B4A08C8FB242\n\n"
    )
    assert signing.answer_message("1554209980", "c5ac7061fccab6bf3e254dcf98995b8c", "{}") == (
        "1554209980\nc5ac7061fccab6bf3e254dcf98995b8c\n{}\n"
    )


def test_the_authorization_header_carries_a_signature_cryptography_verifies() -> None:
    private = keys().merchant_private
    header = signing.authorization(
        private,
        mchid="1900000109",
        serial_no="1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C",
        method="POST",
        path="/v3/pay/transactions/native",
        body='{"a":1}',
        timestamp="1554208460",
        nonce_str="593BEC0C930BF1AFEB40B4A08C8FB242",
    )
    assert header.startswith('WECHATPAY2-SHA256-RSA2048 mchid="1900000109",nonce_str="593BEC0C')
    fields = signing.parse_authorization(header)
    assert fields is not None and fields["serial_no"].startswith("1DDE55AD")
    message = (
        b"POST\n/v3/pay/transactions/native\n1554208460\n"
        b'593BEC0C930BF1AFEB40B4A08C8FB242\n{"a":1}\n'
    )
    private.public_key().verify(  # raises if it does not verify
        base64.b64decode(fields["signature"]), message, padding.PKCS1v15(), hashes.SHA256()
    )
    assert signing.parse_authorization("Bearer x") is None
    assert signing.parse_authorization('WECHATPAY2-SHA256-RSA2048 mchid="1"') is None


def test_an_answer_verifies_only_with_the_key_its_serial_names_and_in_time() -> None:
    wechatpay = keys().wechatpay_private
    body = '{"code_url":"weixin://wxpay/bizpayurl?pr=x"}'
    raw = wechatpay.sign(
        f"1700000000\nNONCE\n{body}\n".encode(), padding.PKCS1v15(), hashes.SHA256()
    )
    signed = signing.SignedBy("1700000000", "NONCE", base64.b64encode(raw).decode(), "PUB_KEY_ID_1")
    public = wechatpay.public_key()
    assert signing.check(signed, body, public, "PUB_KEY_ID_1", 1700000100) is None
    assert "does not verify" in (
        signing.check(signed, body + " ", public, "PUB_KEY_ID_1", 1700000100) or ""
    )
    assert "not the configured" in (
        signing.check(signed, body, public, "PUB_KEY_ID_2", 1700000100) or ""
    )
    assert "5 minutes" in (signing.check(signed, body, public, "PUB_KEY_ID_1", 1700000300) or "")
    other = keys().merchant_private.public_key()
    assert signing.check(signed, body, other, "PUB_KEY_ID_1", 1700000000) is not None
    assert "not signed" in (signing.check(None, body, public, "PUB_KEY_ID_1", 1700000000) or "")
    headers = {k.lower(): v for k, v in signed.headers().items()}
    assert signing.SignedBy.of(headers) == signed
    assert signing.SignedBy.of({"wechatpay-nonce": "x"}) is None


def test_a_resource_decrypts_with_the_api_v3_key_and_its_associated_data() -> None:
    assert signing.decrypt(API_V3_KEY, "abcdefghijkl", "transaction", CIPHERTEXT) == PLAIN
    with pytest.raises(ValueError):
        signing.decrypt(API_V3_KEY, "abcdefghijkl", "refund", CIPHERTEXT)  # other aad
    with pytest.raises(ValueError):
        signing.decrypt(API_V3_KEY.lower(), "abcdefghijkl", "transaction", CIPHERTEXT)
    with pytest.raises(ValueError):
        signing.decrypt("short", "abcdefghijkl", "transaction", CIPHERTEXT)
    with pytest.raises(ValueError):
        signing.decrypt(API_V3_KEY, "abcdefghijkl", "transaction", "not base64!")
    again = signing.encrypt(API_V3_KEY, "abcdefghijkl", "transaction", PLAIN)
    assert again == CIPHERTEXT  # GCM with the same key and nonce: the same bytes


def test_keys_load_from_pem_or_bare_base64() -> None:
    pem = keys().credentials()["mch_private_key"]
    bare = "".join(line for line in pem.splitlines() if not line.startswith("-----"))
    assert signing.load_private_key(bare).private_numbers() == (
        signing.load_private_key(pem).private_numbers()
    )
    public = keys().credentials()["wechatpay_public_key"]
    bare_public = "".join(line for line in public.splitlines() if not line.startswith("-----"))
    assert signing.load_public_key(bare_public).public_numbers() == (
        signing.load_public_key(public).public_numbers()
    )
    with pytest.raises(ValueError):
        signing.load_public_key("not a key!")
