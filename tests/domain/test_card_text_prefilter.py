"""The quick test of ASCII text for a possible card number (`_few_digits`) answers as the
one regular expression it started as, and never passes over a run `runs` would check."""

from __future__ import annotations

import re

from hypothesis import example, given, settings
from hypothesis import strategies as st

from paymend.domain import card_text
from paymend.domain.card_text import MIN_PAN_DIGITS, _few_digits, runs

_JOINERS = card_text._ascii_joiners()
# the first form: 12 digits with any joiners between them, searched for alone
_REFERENCE = re.compile(f"[0-9](?:[{re.escape(_JOINERS)}]*[0-9]){{11}}")
# digits, every joiner and a few letters: ids, trace ids, times and card numbers
_ASCII = st.text(st.sampled_from("0123456789" + _JOINERS + "abfxT:Z+"), max_size=60)


@settings(max_examples=2000, deadline=None)
@given(_ASCII)
@example("4111 1111 1111 1111")
@example("1-2-3-4-5-6-7-8-9-0-1-2")
@example("2026-12-04T15:00:00.123456Z")
@example("4ec3a0418755fc91f74d6a10499d6530")
@example("411111111111")
@example("41111111111x1")
def test_the_quick_test_answers_as_the_first_form(text: str) -> None:
    if len(text) >= MIN_PAN_DIGITS:
        assert _few_digits(text) == (_REFERENCE.search(text) is None)
    if _few_digits(text):
        assert all(len("".join(r.groups)) < MIN_PAN_DIGITS for r in runs(text))
