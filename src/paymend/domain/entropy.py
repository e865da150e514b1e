"""Unguessable random bytes for ids and tokens, drawn from the OS a page at a time.

`os.urandom` (and `secrets`, which calls it) is a system call that lets go of the GIL
and must take it back: on PostgreSQL, where the store's threads run beside the event
loop, each of a payment's six ids and tokens waited for the GIL behind them (20 µs a
call on the loop under load, against 2 µs on SQLite). Here one call fills 4 KiB, and
ids and tokens are cut from it under a lock, which an uncontended thread takes without
letting go of the GIL. The bytes are the OS's CSPRNG's, as `secrets` gives: only where
they are cut changes.

A child process made by `fork` starts with an empty buffer, so that parent and child
never hand out the same bytes.
"""

from __future__ import annotations

import os
import threading

__all__ = ["random_bytes", "random_hex", "random_int"]

PAGE = 4096  # bytes drawn from the OS at once


class _Pool:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._page = b""
        self._at = 0

    def take(self, n: int) -> bytes:
        if n > PAGE:
            return os.urandom(n)
        with self._lock:
            at = self._at
            if at + n > len(self._page):
                self._page, at = os.urandom(PAGE), 0
            self._at = at + n
            return self._page[at : at + n]

    def forget(self) -> None:
        """In a forked child: none of the parent's bytes."""
        self._lock = threading.Lock()
        self._page, self._at = b"", 0


_POOL = _Pool()
os.register_at_fork(after_in_child=_POOL.forget)


def random_bytes(n: int) -> bytes:
    """`n` bytes of the OS's CSPRNG, as `secrets.token_bytes(n)`."""
    return _POOL.take(n)


def random_int(n: int) -> int:
    """A random integer of `n` bytes (8 × n bits), big-endian."""
    return int.from_bytes(_POOL.take(n), "big")


def random_hex(n: int) -> str:
    """`n` random bytes as 2 × n hex digits, as `secrets.token_hex(n)`."""
    return _POOL.take(n).hex()
