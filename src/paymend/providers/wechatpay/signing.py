"""WeChat Pay API v3 signatures and the AES-256-GCM of its notifications, over `cryptography`.

- A request carries `Authorization: WECHATPAY2-SHA256-RSA2048 mchid="…",nonce_str="…",
  timestamp="…",serial_no="…",signature="…"`, the signature being base64 of
  SHA256withRSA (PKCS#1 v1.5) with the merchant's private key over
  `METHOD\\nPATH_WITH_QUERY\\nTIMESTAMP\\nNONCE\\nBODY\\n` (the body empty for a GET).
- An answer and a notification are signed by WeChat Pay over
  `TIMESTAMP\\nNONCE\\nBODY\\n`, with the `Wechatpay-Timestamp`, `Wechatpay-Nonce`,
  `Wechatpay-Signature` and `Wechatpay-Serial` headers. In public-key mode (the
  platform certificates are being retired) the serial is the public key's id,
  `PUB_KEY_ID_…`, and the signature verifies with the WeChat Pay public key.
- A notification's `resource` is AEAD_AES_256_GCM: the key is the merchant's APIv3 key
  (32 ASCII bytes, used as they are), the nonce and associated data are the resource's
  strings, the ciphertext is base64 of the encrypted text followed by the 16-byte tag.

Sources: WeChat Pay's APIv3 rules, https://pay.weixin.qq.com/wiki/doc/apiv3/wechatpay/
wechatpay4_0.shtml (签名生成), wechatpay4_1.shtml (签名验证), wechatpay4_2.shtml (证书和回调报文
解密), and the official SDKs: wechatpay-go (github.com/wechatpay-apiv3/wechatpay-go)
`core/consts/const.go` (the message and header formats),
`core/auth/verifiers/sha256withrsa_pubkey_verifier.go` (the key id must match the
serial), `core/auth/validators/wechat_pay_validator.go` (the 5-minute window),
`core/notify/notify.go` (the AEAD open); wechatpay-java `AbstractHttpClient.java`.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

# the signature itself, SHA256withRSA, for the connector and the simulator
from paymend.providers.rsa_signature import sign as sign
from paymend.providers.rsa_signature import verify as verify

SCHEMA = "WECHATPAY2-SHA256-RSA2048"
PUBLIC_KEY_PREFIX = "PUB_KEY_ID_"
MAX_SKEW_S = 300  # an answer or notification older (or newer) than this is refused
_AUTH_FIELD = re.compile(r'(\w+)="([^"]*)"')


def request_message(method: str, path: str, timestamp: str, nonce: str, body: str) -> str:
    """What a request's signature covers; `path` is the URL's path with its query."""
    return f"{method}\n{path}\n{timestamp}\n{nonce}\n{body}\n"


def answer_message(timestamp: str, nonce: str, body: str) -> str:
    """What an answer's or a notification's signature covers."""
    return f"{timestamp}\n{nonce}\n{body}\n"


def nonce() -> str:
    return secrets.token_hex(16).upper()


def authorization(
    key: rsa.RSAPrivateKey,
    *,
    mchid: str,
    serial_no: str,
    method: str,
    path: str,
    body: str,
    timestamp: str,
    nonce_str: str,
) -> str:
    """The `Authorization` header of one request."""
    signature = sign(key, request_message(method, path, timestamp, nonce_str, body))
    return (
        f'{SCHEMA} mchid="{mchid}",nonce_str="{nonce_str}",timestamp="{timestamp}",'
        f'serial_no="{serial_no}",signature="{signature}"'
    )


def parse_authorization(header: str) -> dict[str, str] | None:
    """The fields of an `Authorization` header, or None when it is not WeChat Pay's."""
    schema, _, rest = header.strip().partition(" ")
    if schema != SCHEMA:
        return None
    fields = dict(_AUTH_FIELD.findall(rest))
    wanted = ("mchid", "nonce_str", "timestamp", "serial_no", "signature")
    return fields if all(fields.get(name) for name in wanted) else None


@dataclass(frozen=True, slots=True)
class SignedBy:
    """The `Wechatpay-*` headers of an answer or a notification."""

    timestamp: str
    nonce: str
    signature: str
    serial: str

    @classmethod
    def of(cls, headers: Mapping[str, str]) -> SignedBy | None:
        """From headers with lower-case names; None when one is missing."""
        got = [headers.get(f"wechatpay-{n}", "").strip() for n in ("timestamp", "nonce")]
        got += [headers.get(f"wechatpay-{n}", "").strip() for n in ("signature", "serial")]
        return cls(*got) if all(got) else None

    def headers(self) -> dict[str, str]:
        return {
            "Wechatpay-Timestamp": self.timestamp,
            "Wechatpay-Nonce": self.nonce,
            "Wechatpay-Signature": self.signature,
            "Wechatpay-Serial": self.serial,
        }


def signed_by(key: rsa.RSAPrivateKey, serial: str, body: str, timestamp: int) -> SignedBy:
    """WeChat Pay's headers over `body` (what the simulator's face sends)."""
    stamp, nonce_str = str(timestamp), nonce()
    return SignedBy(stamp, nonce_str, sign(key, answer_message(stamp, nonce_str, body)), serial)


def check(
    signed: SignedBy | None, body: str, key: rsa.RSAPublicKey, key_id: str, now: float
) -> str | None:
    """Why an answer or notification cannot be believed, or None when it verifies: it
    must be signed, by the public key we know (its id as the serial), within 5 minutes."""
    if signed is None:
        return "not signed: a Wechatpay-* header is missing"
    if signed.serial != key_id:
        return f"signed with key {signed.serial[:40]}, not the configured {key_id}"
    try:
        stamp = int(signed.timestamp)
    except ValueError:
        return "Wechatpay-Timestamp is not a number"
    if abs(now - stamp) >= MAX_SKEW_S:
        return "Wechatpay-Timestamp is more than 5 minutes away"
    if not verify(key, answer_message(signed.timestamp, signed.nonce, body), signed.signature):
        return "the signature does not verify with the WeChat Pay public key"
    return None


def decrypt(api_v3_key: str, nonce_str: str, associated_data: str, ciphertext: str) -> bytes:
    """A notification's resource, opened; ValueError when it does not authenticate."""
    key = api_v3_key.encode("utf-8")
    if len(key) != 32:
        raise ValueError("the APIv3 key must be 32 bytes")
    try:
        data = base64.b64decode(ciphertext, validate=True)
        return AESGCM(key).decrypt(nonce_str.encode("utf-8"), data, associated_data.encode("utf-8"))
    except (InvalidTag, binascii.Error, ValueError):
        raise ValueError("the resource does not decrypt with the APIv3 key") from None


def encrypt(api_v3_key: str, nonce_str: str, associated_data: str, plaintext: bytes) -> str:
    """The inverse of `decrypt` (what the simulator's face sends)."""
    sealed = AESGCM(api_v3_key.encode("utf-8")).encrypt(
        nonce_str.encode("utf-8"), plaintext, associated_data.encode("utf-8")
    )
    return base64.b64encode(sealed).decode("ascii")


def _der(text: str) -> bytes:
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the key is neither PEM nor base64") from None


def load_private_key(text: str) -> rsa.RSAPrivateKey:
    """The merchant's API private key (`apiclient_key.pem`): PEM, or bare base64 DER."""
    data = text.strip().encode()
    if data.startswith(b"-----"):
        key = serialization.load_pem_private_key(data, password=None)
    else:
        key = serialization.load_der_private_key(_der(text), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the private key is not an RSA key")
    return key


def load_public_key(text: str) -> rsa.RSAPublicKey:
    """The WeChat Pay public key (`pub_key.pem` from the merchant platform)."""
    data = text.strip().encode()
    if data.startswith(b"-----"):
        key = serialization.load_pem_public_key(data)
    else:
        key = serialization.load_der_public_key(_der(text))
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("the public key is not an RSA key")
    return key


def public_pem(key: rsa.RSAPublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
