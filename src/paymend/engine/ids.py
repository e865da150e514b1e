"""Id generation: ordered by creation time in production, seeded (reproducible) in the lab."""

from __future__ import annotations

import random

from paymend.domain.clock import Clock
from paymend.domain.entropy import random_int
from paymend.engine.clock import SystemClock

_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"  # RFC 4648 base32, lower case
# the same characters in the order strings sort them (digits first): a number written
# with these sorts as the number does
_SORTED_ALPHABET = "".join(sorted(_ALPHABET))
# every 10-bit value as its two base32 characters: 120 bits are 12 lookups
_PAIRS = tuple(a + b for a in _ALPHABET for b in _ALPHABET)
_SORTED_PAIRS = tuple(a + b for a in _SORTED_ALPHABET for b in _SORTED_ALPHABET)
_SHIFTS = tuple(range(110, -1, -10))
RANDOM_BITS = 72  # after the 48 bits of milliseconds
_TIME_MASK = (1 << 48) - 1


class IdFactory:
    """Makes `prefix_xxxxxxxxxxxxxxxxxxxxxxxx` ids, 120 bits as 24 base32 characters.

    Without a seed: the creation time in milliseconds (48 bits, `clock`'s: the wall
    clock's by default) then 72 random bits, written so that ids sort by creation time.
    A table's id index then takes each new row at its end, as an autoincrement key does,
    instead of anywhere in it: a commit writes one leaf page for a batch of new rows,
    not one each (a random key sends every insert to a different page of an index that
    outgrows the cache). 72 random bits a millisecond still cannot be guessed.

    With a seed: 120 bits of a seeded generator, a sequence that repeats run after run
    (the lab, tests), as it always has."""

    def __init__(self, seed: int | None = None, *, clock: Clock | None = None) -> None:
        # a seeded generator gives the lab reproducible ids; they are not secrets
        self._rng = random.Random(seed) if seed is not None else None  # noqa: S311
        self._clock = clock or SystemClock()
        # the wall clock's milliseconds read directly; any other clock's from its `now`
        self._ms = self._clock.epoch_ms if isinstance(self._clock, SystemClock) else self._clock_ms

    def _clock_ms(self) -> int:
        return int(self._clock.now().timestamp() * 1000)

    def new(self, prefix: str) -> str:
        """One id (random bits cut from domain/entropy.py's page, no modulo bias)."""
        if self._rng is not None:
            n, pairs = int.from_bytes(self._rng.randbytes(15), "big"), _PAIRS
        else:
            at = self._ms() & _TIME_MASK
            n = (at << RANDOM_BITS) | random_int(9)
            pairs = _SORTED_PAIRS
        # base32 by table: base64.b32encode is pure Python
        return f"{prefix}_{''.join([pairs[(n >> s) & 1023] for s in _SHIFTS])}"
