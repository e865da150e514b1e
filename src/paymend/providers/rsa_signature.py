"""SHA256withRSA: RSASSA-PKCS1-v1_5 over SHA-256, the signature base64-encoded.

Alipay's RSA2 and WeChat Pay API v3's SHA256-RSA2048 are both this signature; each
connector's `signing.py` says what text is signed, and cites its provider's rules.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def sign(key: rsa.RSAPrivateKey, text: str) -> str:
    """The base64 signature of `text` (UTF-8)."""
    signature = key.sign(text.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode("ascii")


def verify(key: rsa.RSAPublicKey, text: str, signature: str) -> bool:
    """Whether `signature` (base64) signs `text`; False for one that is not base64."""
    try:
        raw = base64.b64decode(signature, validate=True)
        key.verify(raw, text.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True
