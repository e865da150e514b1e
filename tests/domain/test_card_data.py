"""Card numbers are found in any script, form, field and key; what a field may hold
decides whether a number shaped like one is one."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paymend.domain.card_data import (
    FieldKind,
    field_kind,
    find_card_data,
    holds_card_number,
    is_forbidden_name,
)
from paymend.domain.card_networks import is_card_number, luhn_ok, printed_like_a_card
from paymend.domain.card_text import has_card_number, mask_card_numbers, runs
from paymend.domain.sandbox_cards import ADYEN, STRIPE, UNIONPAY

PUBLISHED = sorted(set(STRIPE + ADYEN + UNIONPAY))

FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
DEVANAGARI = str.maketrans("0123456789", "०१२३४५६७८९")


def printed(pan: str) -> list[str]:
    """The groups a card prints its number in."""
    if len(pan) in (14, 15) and pan[:2] in ("34", "37", "30", "36", "38", "39"):
        return [pan[:4], pan[4:10], pan[10:]]
    return [pan[i : i + 4] for i in range(0, len(pan), 4)]


def forms(pan: str) -> dict[str, str]:
    """Every way a card number reaches a checkout by mistake or on purpose."""
    g = printed(pan)
    return {
        "plain": pan,
        "spaces": " ".join(g),
        "dashes": "-".join(g),
        "dots": ".".join(g),
        "underscores": "_".join(g),
        "slashes": "/".join(g),
        "middle dots": "·".join(g),
        "no-break spaces": "\u00a0".join(g),
        "ideographic spaces": "\u3000".join(g),
        "en dashes": "\u2013".join(g),
        "spaced dashes": " - ".join(g),
        "full-width stops": "\uff0e".join(g),
        "leading plus": "+" + pan,
        "plus and spaces": "+" + " ".join(g),
        "full-width digits": pan.translate(FULL_WIDTH),
        "full-width grouped": "\u3000".join(x.translate(FULL_WIDTH) for x in g),
        "arabic-indic digits": pan.translate(ARABIC_INDIC),
        "devanagari digits": pan.translate(DEVANAGARI),
        "zero-width spaces": "\u200b".join(pan),
        "word joiners": "\u2060".join(pan),
        "soft hyphens": "\u00ad".join(g),
        "in a sentence": f"please charge {' '.join(g)}, thanks",
    }


# a value (text, or a JSON number) put in one place of a request body: (body, parameter)
Place = Callable[[str | int], tuple[Any, str | None]]

STRICT_PLACES: dict[str, Place] = {
    "metadata value": lambda v: ({"metadata": {"note": v}}, "metadata.note"),
    "metadata.phone": lambda v: ({"metadata": {"phone": v}}, "metadata.phone"),
    "metadata.tel": lambda v: ({"metadata": {"tel": v}}, "metadata.tel"),
    "customer.phone": lambda v: ({"customer": {"phone": v}}, "customer.phone"),
    "customer.email": lambda v: ({"customer": {"email": f"{v}@example.com"}}, "customer.email"),
    "bank": lambda v: ({"bank": v}, "bank"),
    "region": lambda v: ({"region": v}, "region"),
    "payment_token": lambda v: ({"payment_token": v}, "payment_token"),
    "reason": lambda v: ({"reason": v}, "reason"),
    "card-like key": lambda v: ({"metadata": {"card_ref": v}}, "metadata.card_ref"),
    "deep in a list": lambda v: (
        {"metadata": {"lines": [{"sku": "a-1"}, {"note": v}]}},
        "metadata.lines[1].note",
    ),
    "metadata key": lambda v: ({"metadata": {v: "x"}}, "metadata"),
    "top-level key": lambda v: ({v: 1}, None),
}

IDENTIFIER_PLACES: dict[str, Place] = {
    "order_id": lambda v: ({"order_id": v}, "order_id"),
    "customer.id": lambda v: ({"customer": {"id": v}}, "customer.id"),
    "metadata.order_no": lambda v: ({"metadata": {"order_no": v}}, "metadata.order_no"),
    "metadata.trackingNumber": lambda v: (
        {"metadata": {"trackingNumber": v}},
        "metadata.trackingNumber",
    ),
}


def test_the_published_sandbox_cards_are_card_numbers() -> None:
    assert len(PUBLISHED) > 100
    for pan in PUBLISHED:
        assert luhn_ok(pan) and is_card_number(pan), pan


def test_every_published_card_in_every_form_and_strict_field_is_found() -> None:
    checked = 0
    for pan in PUBLISHED:
        for form_name, text in forms(pan).items():
            assert has_card_number(text), (pan, form_name)
            assert pan[-4:] in mask_card_numbers(text), (pan, form_name)
            assert pan not in mask_card_numbers(text).translate(FULL_WIDTH), (pan, form_name)
            for place_name, place in STRICT_PLACES.items():
                body, param = place(text)
                found = find_card_data(body)
                assert found is not None, (pan, form_name, place_name)
                assert found.param == param, (pan, form_name, place_name)
                checked += 1
    assert checked > 30_000


@pytest.mark.parametrize("place_name", sorted(IDENTIFIER_PLACES))
def test_published_cards_are_refused_in_identifier_fields_too(place_name: str) -> None:
    place = IDENTIFIER_PLACES[place_name]
    for pan in PUBLISHED:
        for form_name, text in forms(pan).items():
            body, param = place(text)
            found = find_card_data(body)
            assert found is not None and found.param == param, (pan, form_name)


def random_pan(rng: random.Random, prefix: str = "4", length: int = 16) -> str:
    """A card number no provider publishes: a network's range, a valid Luhn digit."""
    while True:
        body = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
        pan = next(body + d for d in "0123456789" if luhn_ok(body + d))
        if is_card_number(pan):
            return pan


def test_identifier_fields_accept_a_plain_run_of_digits_that_looks_like_a_card() -> None:
    rng = random.Random(11)
    for _ in range(200):
        pan = random_pan(rng, rng.choice(["4", "51", "2221", "62", "6011", "35"]))
        for place in IDENTIFIER_PLACES.values():
            body, _ = place(pan)
            assert find_card_data(body) is None, pan
            assert find_card_data(place(int(pan))[0]) is None, pan
        # the same number in free text is a card number
        assert find_card_data({"metadata": {"note": pan}}) is not None


@pytest.mark.parametrize(
    "form_name",
    [
        "spaces",
        "dashes",
        "dots",
        "underscores",
        "ideographic spaces",
        "full-width digits",
        "arabic-indic digits",
        "zero-width spaces",
        "soft hyphens",
        "in a sentence",
    ],
)
def test_identifier_fields_refuse_what_is_unmistakably_a_card(form_name: str) -> None:
    rng = random.Random(form_name)
    for prefix, length in (("4", 16), ("5", 16), ("37", 15), ("36", 14), ("62", 19)):
        pan = random_pan(rng, prefix, length)
        text = forms(pan)[form_name]
        for place in IDENTIFIER_PLACES.values():
            body, param = place(text)
            found = find_card_data(body)
            assert found is not None and found.param == param, (pan, form_name)


def test_identifier_fields_accept_ids_with_separators_that_are_not_printed_like_cards() -> None:
    for order_id in (
        "2026-03-01-4242424242424241",
        "ORD-20260301-000123",
        "20260301 123456 7890",
        "9400 1000 0000 0000 0000 00",
        "1Z 999 AA1 01 2345 6784",
    ):
        assert find_card_data({"order_id": order_id}) is None, order_id


def test_phone_fields_take_phone_numbers_and_nothing_longer() -> None:
    for phone in (
        "+8613812345678",
        "+86 138 1234 5678",
        "+49 151 23456789",
        "+1 (415) 555-0132",
        "0044 7911 123456",
        "13812345678",
    ):
        assert find_card_data({"customer": {"phone": phone}}) is None, phone
        assert find_card_data({"metadata": {"mobile": phone}}) is None, phone
    rng = random.Random(3)
    for _ in range(100):
        pan = random_pan(rng, rng.choice(["4", "5", "62"]), rng.choice([16, 19]))
        assert find_card_data({"customer": {"phone": pan}}) is not None, pan
        assert find_card_data({"customer": {"phone": "+" + pan}}) is not None, pan
    # American Express (15) and Diners Club (14): no country has numbers that long there
    for prefix, length in (("37", 15), ("34", 15), ("36", 14)):
        pan = random_pan(rng, prefix, length)
        assert find_card_data({"customer": {"phone": "+" + pan}}) is not None, pan


def test_card_data_field_names_are_refused_whatever_they_hold() -> None:
    for key in ("cvv", "CVC2", "card_number", "cardNumber", "pan", "security_code", "track2"):
        assert is_forbidden_name(key)
        assert find_card_data({"metadata": {key: "x"}}) is not None
    assert find_card_data({"cvv": "123"}) == find_card_data({"cvv": 123})
    for key in ("card_last4", "panel", "order_no", "company"):
        assert not is_forbidden_name(key)


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        ("order_id", FieldKind.IDENTIFIER),
        ("id", FieldKind.IDENTIFIER),
        ("invoiceId", FieldKind.IDENTIFIER),
        ("out_trade_no", FieldKind.IDENTIFIER),
        ("orderno", FieldKind.IDENTIFIER),
        ("tracking_number", FieldKind.IDENTIFIER),
        ("Idempotency-Key", FieldKind.IDENTIFIER),
        ("phone", FieldKind.PHONE),
        ("tel", FieldKind.PHONE),
        ("mobile_number", FieldKind.PHONE),
        ("note", FieldKind.TEXT),
        ("payment_token", FieldKind.TEXT),
        ("card_id", FieldKind.TEXT),
        ("account_no", FieldKind.TEXT),
        ("bank", FieldKind.TEXT),
    ],
)
def test_field_kinds_come_from_names(key: str, kind: FieldKind) -> None:
    assert field_kind(key) is kind


def test_logs_mask_every_card_number_whatever_the_field() -> None:
    rng = random.Random(5)
    pan = random_pan(rng)
    assert mask_card_numbers(f"order {pan} paid") == f"order [card ****{pan[-4:]}] paid"
    assert mask_card_numbers("call +86 138 1234 5678 at 20:30") == (
        "call +86 138 1234 5678 at 20:30"
    )
    assert mask_card_numbers("4111111111111112") == "4111111111111112"  # Luhn fails
    assert not holds_card_number(pan, FieldKind.IDENTIFIER)
    assert holds_card_number(pan, FieldKind.TEXT)


def test_runs_normalise_digits_and_keep_their_place_in_the_text() -> None:
    text = "ab ４２４２\u200b 4242 x"
    (run,) = runs(text)
    assert run.groups == ("4242", "4242")
    assert text[run.start : run.end] == "４２４２\u200b 4242"
    assert not run.plain
    assert runs("12 34")[0].plain


def test_card_print_layouts() -> None:
    assert printed_like_a_card(("4242", "4242", "4242", "4242"))
    assert printed_like_a_card(("3782", "822463", "10005"))
    assert printed_like_a_card(("6205", "5000", "0000", "0000", "004"))
    assert not printed_like_a_card(("20260301", "4242424242424242"))
    assert not printed_like_a_card(("4242", "4242", "4242"))


def _walked(value: object, path: str = "", kind: FieldKind = FieldKind.TEXT) -> str | None:
    """The rule find_card_data keeps, as a plain recursion over the value: the parameter
    to name ("" for the top), or None when nothing is card data."""
    if isinstance(value, dict):
        for key, item in value.items():
            if has_card_number(key):
                return path
            sub = f"{path}.{key}" if path else key
            if is_forbidden_name(key):
                return sub
            found = _walked(item, sub, field_kind(key))
            if found is not None:
                return found
        return None
    if isinstance(value, list):
        for i, item in enumerate(value):
            found = _walked(item, f"{path}[{i}]", kind)
            if found is not None:
                return found
        return None
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return path if holds_card_number(str(value), kind) else None
    return None


_KEYS = st.sampled_from(
    ["order_id", "note", "phone", "cvv", "card_number", "items", "", "x", "4242424242424242"]
)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([*PUBLISHED, "4242 4242 4242 4242", "+49 30 1234567", "12345678901234"]),
    st.text(alphabet="0123456789 -abc", max_size=24),
)
_BODIES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=12,
)


@given(_BODIES)
@settings(max_examples=400, deadline=None)
def test_the_walk_names_what_a_plain_recursion_finds(body: object) -> None:
    # one card number found at most: a body with two reports either, depending on order
    found = find_card_data(body)
    expected = _walked(body)
    assert (found is None) == (expected is None)
    if found is not None and _count(body) == 1:
        assert found.param == (expected or None)


def _count(value: object) -> int:
    """How many places of `value` the plain recursion would refuse."""
    if isinstance(value, dict):
        return sum(
            1 if has_card_number(k) or is_forbidden_name(k) else _count(v) for k, v in value.items()
        )
    if isinstance(value, list):
        return sum(_count(v) for v in value)
    return 1 if _walked(value) is not None else 0
