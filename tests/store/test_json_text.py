"""Stored JSON text reads back as the value written, whatever the value."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from paymend.store.json_text import dumps

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()  # beyond 64 bits too: those take the standard library's way
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(_VALUES)
def test_text_reads_back_as_the_value(value: Any) -> None:
    text = dumps(value)
    assert json.loads(text) == value
    assert text == json.dumps(value, ensure_ascii=False, separators=(",", ":")) or any(
        isinstance(v, float) for v in _leaves(value)
    )  # the same text, but for how a float is spelled (1e16 or 1e+16)


def test_what_orjson_cannot_write_is_written_as_before() -> None:
    assert dumps({1: "a", "b": 2**70}) == '{"1":"a","b":1180591620717411303424}'
    assert dumps({"note": "第一"}) == '{"note":"第一"}'
    assert dumps([math.nan]) == "[null]"  # not the invalid token NaN


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, list):
        return [leaf for v in value for leaf in _leaves(v)]
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    return [value]
