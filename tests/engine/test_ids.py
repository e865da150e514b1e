"""Ids are `prefix_` and 24 base32 characters of 120 random bits; a seed repeats them."""

from __future__ import annotations

import base64
import random

from paymend.engine.ids import IdFactory


def test_an_id_is_the_lower_case_base32_of_its_random_bits() -> None:
    draws, ids = random.Random(7), IdFactory(seed=7)
    for _ in range(2_000):
        expected = base64.b32encode(draws.randbytes(15)).decode().lower()
        assert ids.new("pay") == f"pay_{expected}"


def test_a_seed_repeats_its_ids_and_no_seed_does_not() -> None:
    assert [IdFactory(3).new("evt") for _ in range(3)] == [IdFactory(3).new("evt")] * 3
    fresh = IdFactory()
    assert len({fresh.new("att") for _ in range(1_000)}) == 1_000
