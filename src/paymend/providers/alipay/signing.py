"""RSA2 signatures of the Alipay open platform, over `cryptography`.

The string signed is every parameter but `sign` (and, for an asynchronous notification,
`sign_type`) whose value is not empty, sorted by name (byte order), joined as
`k=v&k=v` with raw, unencoded values; the signature is SHA256withRSA (PKCS#1 v1.5),
base64. A gateway answer is signed over the exact JSON text of its `<method>_response`
node as it was sent, so the node is cut out of the raw body, never re-serialized.

Sources: Alipay's signing guide (https://opendocs.alipay.com/common/02kf5q, "自行实现签名"),
its verification of answers and notifications (https://opendocs.alipay.com/common/02mse7),
and python-alipay-sdk's `_verify_and_return_sync_response` (github.com/fzlee/alipay,
alipay/__init__.py), which cuts the node out of the raw text the same way.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

# the signature itself, SHA256withRSA (RSA2), for the connector and the simulator
from paymend.providers.rsa_signature import sign as sign
from paymend.providers.rsa_signature import verify as verify

SIGN_TYPE = "RSA2"


def sign_content(params: Mapping[str, str], exclude: Iterable[str] = ("sign",)) -> str:
    """The string a request (exclude `sign`) or a notification (exclude `sign` and
    `sign_type`) is signed over."""
    skip = set(exclude)
    return "&".join(
        f"{k}={v}" for k, v in sorted(params.items()) if k not in skip and v not in ("", None)
    )


def _der(text: str) -> bytes | None:
    """A bare base64 key (Alipay's console gives keys without PEM armour)."""
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        return None


def load_private_key(text: str) -> rsa.RSAPrivateKey:
    """The app's private key: PEM, or bare base64 of PKCS#8 or PKCS#1 DER."""
    data = text.strip().encode()
    if data.startswith(b"-----"):
        key = serialization.load_pem_private_key(data, password=None)
    else:
        der = _der(text)
        if der is None:
            raise ValueError("the private key is neither PEM nor base64")
        key = serialization.load_der_private_key(der, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the private key is not an RSA key")
    return key


def load_public_key(text: str) -> rsa.RSAPublicKey:
    """Alipay's public key: PEM, or bare base64 of its SubjectPublicKeyInfo DER."""
    data = text.strip().encode()
    if data.startswith(b"-----"):
        key = serialization.load_pem_public_key(data)
    else:
        der = _der(text)
        if der is None:
            raise ValueError("the public key is neither PEM nor base64")
        key = serialization.load_der_public_key(der)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("the public key is not an RSA key")
    return key


def response_node(body: str, node: str) -> str | None:
    """The raw JSON text of `node`'s value in a gateway answer, exactly as sent; None
    when the answer has no such node or is not JSON there."""
    key = f'"{node}"'
    at = body.find(key)
    if at < 0:
        return None
    colon = body.find(":", at + len(key))
    if colon < 0:
        return None
    start = colon + 1
    while start < len(body) and body[start] in " \t\r\n":
        start += 1
    try:
        _, end = json.JSONDecoder().raw_decode(body, start)
    except json.JSONDecodeError:
        return None
    return body[start:end]


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
