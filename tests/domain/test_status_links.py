"""Status links: a token opens its own payment until it expires, and nothing else."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from paymend.domain.status_links import LinkProblem, sign, verify
from tests.helpers import NOW

KEY = b"k" * 32
LATER = NOW + timedelta(days=1)


def test_a_token_opens_its_payment_until_it_expires() -> None:
    token = sign(KEY, "pay_abc", LATER)
    assert verify(KEY, token, NOW).payment_id == "pay_abc"
    assert verify(KEY, token, LATER - timedelta(seconds=1)).payment_id == "pay_abc"
    assert verify(KEY, token, LATER).problem is LinkProblem.EXPIRED
    assert verify(b"another key", token, NOW).problem is LinkProblem.MALFORMED


@settings(max_examples=40)
@given(st.integers(min_value=0), st.characters(categories=["L", "N", "P"]))
def test_any_change_to_a_token_opens_nothing(where: int, char: str) -> None:
    token = sign(KEY, "pay_abc", LATER)
    i = where % len(token)
    changed = token[:i] + char + token[i + 1 :]
    if changed != token:
        check = verify(KEY, changed, NOW)
        assert check.payment_id is None and check.problem is LinkProblem.MALFORMED


def test_a_token_has_one_spelling() -> None:
    """The tag's last base64 character carries 2 bits and 4 spare ones: a character that
    differs only in the spare bits decodes to the same tag, and still opens nothing."""
    token = sign(KEY, "pay_abc", LATER)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for char in alphabet.replace(token[-1], ""):
        assert verify(KEY, token[:-1] + char, NOW).payment_id is None


def test_a_token_for_one_payment_cannot_be_reused_for_another() -> None:
    _, _, tag_a = sign(KEY, "pay_a", LATER).partition(".")
    body_b, _, _ = sign(KEY, "pay_b", LATER).partition(".")
    assert verify(KEY, f"{body_b}.{tag_a}", NOW).problem is LinkProblem.MALFORMED
    assert verify(KEY, "", NOW).problem is LinkProblem.MALFORMED
    assert verify(KEY, "x" * 500, NOW).problem is LinkProblem.MALFORMED
