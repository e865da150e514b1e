"""Id generation: random in production, seeded (reproducible) in the lab."""

from __future__ import annotations

import random
import secrets
import string

_ALPHABET = string.ascii_lowercase + string.digits


class IdFactory:
    """Makes `prefix_xxxxxxxxxxxxxxxxxxxx` ids; pass a seed for a reproducible sequence."""

    def __init__(self, seed: int | None = None) -> None:
        # a seeded generator gives the lab reproducible ids; they are not secrets
        self._rng = random.Random(seed) if seed is not None else None  # noqa: S311

    def new(self, prefix: str) -> str:
        if self._rng is None:
            body = "".join(secrets.choice(_ALPHABET) for _ in range(20))
        else:
            body = "".join(self._rng.choice(_ALPHABET) for _ in range(20))
        return f"{prefix}_{body}"
