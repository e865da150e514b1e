"""Ids are `prefix_` and 24 base32 characters: without a seed, the creation time's
milliseconds then random bits, so that they sort by creation time; with a seed, 120
bits of a generator that repeats them."""

from __future__ import annotations

import base64
import random
from datetime import UTC, datetime, timedelta
from itertools import pairwise

from paymend.engine.clock import SystemClock
from paymend.engine.ids import RANDOM_BITS, IdFactory
from tests.helpers import ManualClock

BASE32 = set("abcdefghijklmnopqrstuvwxyz234567")


def test_a_seeded_id_is_the_lower_case_base32_of_its_random_bits() -> None:
    draws, ids = random.Random(7), IdFactory(seed=7)
    for _ in range(2_000):
        expected = base64.b32encode(draws.randbytes(15)).decode().lower()
        assert ids.new("pay") == f"pay_{expected}"


def test_a_seed_repeats_its_ids_and_no_seed_does_not() -> None:
    assert [IdFactory(3).new("evt") for _ in range(3)] == [IdFactory(3).new("evt")] * 3
    fresh = IdFactory()
    assert len({fresh.new("att") for _ in range(1_000)}) == 1_000


def test_ids_sort_by_the_millisecond_they_were_made_in() -> None:
    clock = ManualClock()
    ids = IdFactory(clock=clock)
    made = []
    for step_ms in (0, 1, 1, 31, 32, 1_000, 1 << 20, 86_400_000):
        clock.advance(step_ms / 1000)
        made.append([ids.new("pay") for _ in range(50)])
    # every id of a later millisecond sorts after every id of an earlier one
    for earlier, later in pairwise(made):
        assert max(earlier) < min(later)
    every = [i for batch in made for i in batch]
    assert len(set(every)) == len(every)  # random within one millisecond
    assert all(len(i) == 28 and set(i[4:]) <= BASE32 for i in every)  # the same characters


def test_an_unseeded_id_holds_its_millisecond_and_72_random_bits() -> None:
    alphabet = "".join(sorted(BASE32))
    clock = ManualClock()
    ids = IdFactory(clock=clock)
    at = int(clock.now().timestamp() * 1000)
    for i in (ids.new("pay") for _ in range(200)):
        n = 0
        for c in i[4:]:
            n = n * 32 + alphabet.index(c)
        assert n >> RANDOM_BITS == at
    tails = {ids.new("pay")[-14:] for _ in range(200)}
    assert len(tails) == 200


def test_on_the_wall_clock_an_id_holds_the_millisecond_it_was_made_in() -> None:
    """The system clock's milliseconds are read without a datetime; an id made between
    two readings of the wall clock holds a millisecond between them."""
    alphabet = "".join(sorted(BASE32))
    ids = IdFactory(clock=SystemClock())
    for _ in range(200):
        before = datetime.now(UTC)
        made = ids.new("pay")
        after = datetime.now(UTC)
        n = 0
        for c in made[4:]:
            n = n * 32 + alphabet.index(c)
        at = datetime.fromtimestamp((n >> RANDOM_BITS) / 1000, UTC)
        assert before - timedelta(milliseconds=1) <= at <= after
