"""Health keys: one spelling per channel and scope, shared by health and routing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paymend.health.keys import (
    AMOUNT_BANDS,
    DIMENSIONS,
    amount_band,
    channel_key,
    context_keys,
    parse_key,
    scoped_key,
)


def test_a_channel_key_is_the_channel_name() -> None:
    assert channel_key("sim_a") == "sim_a"


def test_a_scoped_key_names_channel_dimension_and_value() -> None:
    assert scoped_key("sim_a", "bank", "CMB") == "sim_a|bank=CMB"
    assert scoped_key("sim_a", "amount", ">=1000") == "sim_a|amount=>=1000"


def test_an_unknown_dimension_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown health dimension 'issuer'"):
        scoped_key("sim_a", "issuer", "CMB")


@pytest.mark.parametrize(
    ("minor", "currency", "band"),
    [
        # JPY: exponent 0, minor units are yen
        (9, "JPY", "<10"),
        (10, "JPY", "10-100"),
        (999, "JPY", "100-1000"),
        (1000, "JPY", ">=1000"),
        # USD: exponent 2, cents
        (999, "USD", "<10"),
        (1000, "USD", "10-100"),
        (9999, "USD", "10-100"),
        (10000, "USD", "100-1000"),
        (99999, "USD", "100-1000"),
        (100000, "USD", ">=1000"),
        # KWD: exponent 3, fils
        (9999, "KWD", "<10"),
        (10000, "KWD", "10-100"),
        (999999, "KWD", "100-1000"),
        (1000000, "KWD", ">=1000"),
        (0, "USD", "<10"),
    ],
)
def test_amount_bands_are_in_major_units_of_the_currency(
    minor: int, currency: str, band: str
) -> None:
    assert amount_band(minor, currency) == band


def test_the_same_minor_amount_falls_in_different_bands_by_exponent() -> None:
    assert [amount_band(1500, c) for c in ("JPY", "USD", "KWD")] == [">=1000", "10-100", "<10"]


def test_amount_band_refuses_unknown_currencies_and_negative_amounts() -> None:
    with pytest.raises(ValueError, match="unknown currency 'XXX'"):
        amount_band(100, "XXX")
    with pytest.raises(ValueError, match="must not be negative"):
        amount_band(-1, "USD")


def test_context_keys_list_the_channel_first_then_each_scope_the_payment_has() -> None:
    assert context_keys("sim_a", "card", "CMB", "CN-East", "10-100") == (
        "sim_a",
        "sim_a|method=card",
        "sim_a|bank=CMB",
        "sim_a|region=CN-East",
        "sim_a|amount=10-100",
    )
    assert context_keys("sim_a", "alipay", None, None, "<10") == (
        "sim_a",
        "sim_a|method=alipay",
        "sim_a|amount=<10",
    )


def test_context_keys_match_the_single_key_builders() -> None:
    keys = context_keys("sim_a", "card", "CMB", "CN", "<10")
    assert keys[0] == channel_key("sim_a")
    assert keys[2] == scoped_key("sim_a", "bank", "CMB")


def test_parse_key_inverts_the_builders() -> None:
    assert parse_key("sim_a") == ("sim_a", {})
    assert parse_key("sim_a|bank=CMB") == ("sim_a", {"bank": "CMB"})
    assert parse_key("sim_a|method=card|amount=>=1000") == (
        "sim_a",
        {"method": "card", "amount": ">=1000"},
    )


@pytest.mark.parametrize(
    "key", ["", "|bank=CMB", "sim_a|bank", "sim_a|issuer=CMB", "sim_a|bank=A|bank=B"]
)
def test_parse_key_refuses_malformed_keys(key: str) -> None:
    with pytest.raises(ValueError, match="health key"):
        parse_key(key)


def test_separators_in_a_bank_name_cannot_forge_another_scope() -> None:
    key = scoped_key("sim_a", "bank", "X|region=CN")
    assert parse_key(key) == ("sim_a", {"bank": "X|region=CN"})
    assert key != "sim_a|bank=X|region=CN"


names = st.text(min_size=1, max_size=12)
values = st.one_of(st.none(), st.text(max_size=12))


@given(names, values, values, values, st.sampled_from(AMOUNT_BANDS))
def test_every_context_key_parses_back_to_its_parts(
    channel: str, method: str | None, bank: str | None, region: str | None, band: str
) -> None:
    keys = context_keys(channel, method, bank, region, band)
    assert len(set(keys)) == len(keys)
    given_parts = dict(zip(DIMENSIONS, (method, bank, region, band), strict=True))
    for key in keys[1:]:
        parsed_channel, parts = parse_key(key)
        assert parsed_channel == channel
        ((dimension, value),) = parts.items()
        assert given_parts[dimension] == value
    assert parse_key(keys[0]) == (channel, {})
