"""The customer's link to a payment's status page: `/pay/{token}`.

The token names the payment and when the link stops working, signed with HMAC-SHA256
under the deployment's link key (`PAYMEND_LINK_KEY`), so whoever holds a link sees that
one payment until it expires, and nobody can make a link to another. It carries no
personal data: a payment id and a time. Pure: the caller gives the key and the time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

_TAG_BYTES = 16  # 128 bits of HMAC-SHA256: far beyond guessing, a short link


class LinkProblem(StrEnum):
    """Why a token opens nothing (the page says which, in plain words)."""

    MALFORMED = "malformed"  # not a token we make, or altered
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class LinkCheck:
    payment_id: str | None
    problem: LinkProblem | None


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _tag(key: bytes, body: str) -> bytes:
    return hmac.new(key, b"paymend-status-link:" + body.encode("ascii"), hashlib.sha256).digest()[
        :_TAG_BYTES
    ]


def sign(key: bytes, payment_id: str, expires_at: datetime) -> str:
    """A token for `payment_id` valid until `expires_at` (to the second)."""
    body = _b64(f"{payment_id}.{int(expires_at.timestamp())}".encode("ascii"))
    return f"{body}.{_b64(_tag(key, body))}"


def verify(key: bytes, token: str, now: datetime) -> LinkCheck:
    """The payment a token names, or why it names none. The signature is checked
    before anything in the token is believed; an expired one is told apart only then."""
    body, dot, tag = token.partition(".")
    if not dot or len(token) > 200 or not body.isascii() or not tag.isascii():
        return LinkCheck(None, LinkProblem.MALFORMED)
    try:
        given = _unb64(tag)
        payment_id, _, expiry = _unb64(body).decode("ascii").rpartition(".")
        expires_at = datetime.fromtimestamp(int(expiry), UTC)
    except (ValueError, UnicodeDecodeError, OverflowError):
        return LinkCheck(None, LinkProblem.MALFORMED)
    # one spelling per token: base64's spare bits in a last character are not ignored
    canonical = _b64(given) == tag and _b64(_unb64(body)) == body
    if not canonical or not hmac.compare_digest(given, _tag(key, body)) or not payment_id:
        return LinkCheck(None, LinkProblem.MALFORMED)
    if now >= expires_at:
        return LinkCheck(None, LinkProblem.EXPIRED)
    return LinkCheck(payment_id, None)
