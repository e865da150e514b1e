"""Contenders measured in turn: the order in which bench/http_load.py and bench/engine.py
hand each contender its share of the work.

Measured one after the other, on a machine whose speed drifts within minutes, one
contender gets the fast minutes and the next the slow ones. In rounds, each taking its
share while the others idle and the first moving one place a round, a drift slows all
of them alike."""

from __future__ import annotations

from collections.abc import Iterator


def share_out(total: int, parts: int) -> list[int]:
    """`total` split into `parts` shares that differ by at most one, the larger first."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def in_turns(contenders: int, total: int, rounds: int) -> Iterator[tuple[int, int, int]]:
    """(round, contender's index, its share of `total`) in the order the turns are taken."""
    for r, share in enumerate(share_out(total, rounds)):
        for k in range(contenders):
            yield r, (r + k) % contenders, share
