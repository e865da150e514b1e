"""schemathesis hooks of the contract test (tests/api/test_openapi_contract.py).

JSON Schema counts `1999.0` as an integer; paymend refuses it (an amount must be written as
an integer: `19.99 * 100` is `1998.9999999999998`, and a client that sends floats fails on
the first amount, not on some). The document cannot say so, so whole numbers are sent as
integers.
"""

from __future__ import annotations

from typing import Any

import schemathesis


def _integers(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _integers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integers(v) for v in value]
    return value


@schemathesis.hook
def map_body(context: schemathesis.HookContext, body: Any) -> Any:
    return _integers(body)
