"""The JSON text of what paymend stores: JSON columns and an Idempotency-Key's answer.

A payment encodes several JSON values on its way (its metadata, the attempt's masked
request, each event's payload, its answer): with the standard library's encoder that was
a twentieth of a payment's CPU. orjson writes the same JSON (compact, UTF-8 as it is)
several times faster. What it cannot write (an integer beyond 64 bits, a key that is not
a string, a type it does not know) goes to the standard library's encoder as before, so
nothing that was stored before is refused now; a NaN, which that encoder wrote as the
invalid token `NaN`, is written as `null`.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

__all__ = ["dumps"]


def dumps(value: Any) -> str:
    """`value` as compact JSON text."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError is one
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
