"""Webhook signatures and the retry schedule. Pure: no I/O.

Every delivery carries

    Paymend-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
    Paymend-Event-Id: evt_…   (stable across retries: drop duplicates by it)

A receiver recomputes the HMAC over the timestamp and the raw body with its endpoint
secret, compares in constant time, and refuses old timestamps (replays). `verify` does
exactly that and can be copied into a receiver as is.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

SIGNATURE_HEADER = "Paymend-Signature"
EVENT_ID_HEADER = "Paymend-Event-Id"
TOLERANCE_S = 300
GIVE_UP_AFTER = timedelta(days=3)
# waits between tries: fast first, then spread out over three days
SCHEDULE_S = (10, 30, 60, 300, 900, 1800, 3600, 7200, 14400, 28800, 43200)


class InvalidSignature(Exception):
    pass


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def sign(body: bytes, secret: str, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(
    body: bytes, header: str, secret: str, now: float, tolerance_s: int = TOLERANCE_S
) -> int:
    """Check a `Paymend-Signature` header; return its timestamp or raise InvalidSignature."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError):
        raise InvalidSignature("malformed signature header") from None
    expected = sign(body, secret, timestamp).split("v1=", 1)[1]
    if not hmac.compare_digest(expected, given):
        raise InvalidSignature("signature does not match")
    if abs(now - timestamp) > tolerance_s:
        raise InvalidSignature("timestamp outside the tolerance: a replay?")
    return timestamp


def next_wait(tries: int) -> float:
    """Seconds before try number `tries + 1` (tries made so far, starting at 1)."""
    return float(SCHEDULE_S[min(tries - 1, len(SCHEDULE_S) - 1)])


def next_try_in(tries: int, age: timedelta) -> float | None:
    """Seconds until the next try of a delivery `age` old, or None to give up: no try is
    scheduled past GIVE_UP_AFTER."""
    wait = next_wait(tries)
    return None if age + timedelta(seconds=wait) > GIVE_UP_AFTER else wait
