"""Every random draw a lab provider makes, as a pure function of where it is made.

A call's draws come from a generator seeded by a stable hash (BLAKE2b, never Python's
salted `hash`) of the scenario's seed, the payment (its arrival number), the channel, the
attempt number on that channel and what is drawn. So the same payment meets the same fate
on a channel whatever else happened in the run: another policy, another route, another
interleaving of the tasks. That is what lets the oracle and the naive checkout replay a
payment exactly without running the engine (lab/oracle.py, lab/naive.py).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass


def stream(seed: int, *where: object) -> random.Random:
    """A generator of its own for one place in the scenario (seed, payment, channel, …)."""
    key = repr((seed, *where)).encode()
    digest = hashlib.blake2b(key, digest_size=16).digest()
    return random.Random(int.from_bytes(digest, "big"))  # noqa: S311 - a simulation


@dataclass(frozen=True, slots=True)
class CallDraws:
    """What one authorize call (payment, channel, attempt number) draws, all at once."""

    faults: tuple[float, ...]  # one uniform per scenario fault, in file order: hit if < rate
    charged: float  # a hung call was processed anyway when below the fault's `charged`
    error: float  # a technical error when below the channel's `technical_error_rate`
    latency: float  # a standard normal: the answer's latency through the p50 and the p99
    confirm: float  # a standard normal: the latency of completing it after 3-D Secure


def call_draws(seed: int, payment: int, channel: str, attempt: int, faults: int) -> CallDraws:
    rng = stream(seed, "call", payment, channel, attempt)
    return CallDraws(
        faults=tuple(rng.random() for _ in range(faults)),
        charged=rng.random(),
        error=rng.random(),
        latency=rng.gauss(0.0, 1.0),
        confirm=rng.gauss(0.0, 1.0),
    )


def query_draw(seed: int, payment: int, channel: str, attempt: int, query: int) -> float:
    """A standard normal for the latency of the `query`-th status query of an attempt."""
    return stream(seed, "query", payment, channel, attempt, query).gauss(0.0, 1.0)
