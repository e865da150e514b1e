"""Id generation: random in production, seeded (reproducible) in the lab."""

from __future__ import annotations

import base64
import random
import secrets


class IdFactory:
    """Makes `prefix_xxxxxxxxxxxxxxxxxxxxxxxx` ids; pass a seed for a reproducible sequence."""

    def __init__(self, seed: int | None = None) -> None:
        # a seeded generator gives the lab reproducible ids; they are not secrets
        self._rng = random.Random(seed) if seed is not None else None  # noqa: S311

    def new(self, prefix: str) -> str:
        """120 random bits as 24 base32 characters (one system call, no modulo bias)."""
        raw = secrets.token_bytes(15) if self._rng is None else self._rng.randbytes(15)
        return f"{prefix}_{base64.b32encode(raw).decode().lower()}"
