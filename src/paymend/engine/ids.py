"""Id generation: random in production, seeded (reproducible) in the lab."""

from __future__ import annotations

import random
import secrets

_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"  # RFC 4648 base32, lower case
# every 10-bit value as its two base32 characters: 120 bits are 12 lookups
_PAIRS = tuple(a + b for a in _ALPHABET for b in _ALPHABET)
_SHIFTS = tuple(range(110, -1, -10))


class IdFactory:
    """Makes `prefix_xxxxxxxxxxxxxxxxxxxxxxxx` ids; pass a seed for a reproducible sequence."""

    def __init__(self, seed: int | None = None) -> None:
        # a seeded generator gives the lab reproducible ids; they are not secrets
        self._rng = random.Random(seed) if seed is not None else None  # noqa: S311

    def new(self, prefix: str) -> str:
        """120 random bits as 24 base32 characters (one system call, no modulo bias)."""
        raw = secrets.token_bytes(15) if self._rng is None else self._rng.randbytes(15)
        n = int.from_bytes(raw, "big")  # base32 by table: base64.b32encode is pure Python
        return f"{prefix}_{''.join([_PAIRS[(n >> s) & 1023] for s in _SHIFTS])}"
