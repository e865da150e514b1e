"""An Idempotency-Key's request hash is the one stored keys were made with: a key
claimed before an upgrade still matches the same request after it."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from hypothesis import given, settings
from hypothesis import strategies as st

from paymend.store.idempotency import request_hash

# what a request body is once the API's models dump it (mode="json"): no floats in any
# of them, strings without unpaired surrogates (api/inputs.py refuses those first), and
# integers of any size (beyond 64 bits, the standard library's encoder writes them)
_SURROGATES: tuple[Literal["Cs"]] = ("Cs",)
_TEXT = st.text(st.characters(exclude_categories=_SURROGATES), max_size=12)
_SCALARS = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | _TEXT
_BODIES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=20,
)


def _as_stored(path: str, body: Any) -> str:
    """How every key stored so far was hashed: the standard library's sorted, compact,
    unescaped JSON."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{path}\n{canonical}".encode()).hexdigest()


@settings(max_examples=400, deadline=None)
@given(_TEXT, st.dictionaries(_TEXT, _BODIES, max_size=6))
def test_the_hash_is_the_one_keys_were_stored_with(path: str, body: dict[str, Any]) -> None:
    assert request_hash(path, body) == _as_stored(path, body)


def test_key_order_and_values_decide_the_hash() -> None:
    assert request_hash("/v1/payments", {"a": 1, "b": "é"}) == request_hash(
        "/v1/payments", {"b": "é", "a": 1}
    )
    assert request_hash("/v1/payments", {"a": 1}) != request_hash("/v1/payments", {"a": 2})
    assert request_hash("/v1/payments", {"a": 1}) != request_hash("/v1/refunds", {"a": 1})
