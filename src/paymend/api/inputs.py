"""What every request's strings may hold, checked before anything parses them deeply,
stores or logs them: nesting depth, card data, control characters.

Bodies are checked by the guard (`api/guard.py`) before the app sees them; path, query
and the one stored header (`Idempotency-Key`) by `check_parameters`, which runs before
every route once routing has named the path's parameters (`api/checked.py`). A string
that breaks a rule is a 400 naming the parameter, never a database error: PostgreSQL
refuses NUL characters, and an unpaired surrogate cannot be encoded as UTF-8 at all.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from fastapi import Request
from starlette.datastructures import QueryParams
from starlette.types import Scope

from paymend.api.errors import error_body
from paymend.domain.card_data import FieldKind, field_kind, find_card_data, holds_card_number
from paymend.domain.card_text import has_card_number
from paymend.domain.errors import InvalidInput

MAX_JSON_DEPTH = 32  # paymend's own bodies nest three levels deep

CARD_DATA_MESSAGE = (
    "raw card numbers and security codes are never accepted; send the payment_token "
    "from your provider's client-side SDK instead"
)

# C0 and C1 control characters, DEL and unpaired surrogates; free text may hold tabs and
# line breaks, nothing else may.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_CONTROL_IN_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_STRUCTURE = re.compile(rb'[\[\]{}"\\]')
# A parsed JSON string can hold a control character or a surrogate only from an escape
# (`\u0000`, `\ud800`), a raw DEL, or a raw C1 character (UTF-8 C2 80-9F): raw C0
# characters are not valid JSON (json.loads refuses them). A body with none of these
# bytes (read as UTF-8, not the UTF-16 or -32 json.loads also reads) needs no walk of
# its strings for `control_character`.
_MAY_HOLD_CONTROL = re.compile(rb"[\\\x7f]|\xc2[\x80-\x9f]")


def too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """The JSON text nests arrays and objects deeper than `limit`. One pass over the
    structural bytes, without recursion and before any parser sees it; none when the
    text opens no more arrays and objects than `limit` in all (every body paymend
    defines), as it cannot nest deeper than it opens."""
    if body.count(b"{") + body.count(b"[") <= limit:
        return False
    depth = 0
    in_string = False
    skip_to = -1  # the byte after a backslash in a string is not structural
    for match in _STRUCTURE.finditer(body):
        at = match.start()
        if at < skip_to:
            continue
        byte = body[at]
        if in_string:
            if byte == 0x5C:
                skip_to = at + 2
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            if depth > limit:
                return True
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return False


def _describe(ch: str) -> str:
    kind = "an unpaired surrogate" if 0xD800 <= ord(ch) <= 0xDFFF else "a control character"
    return f"{kind} (U+{ord(ch):04X})"


def bad_character(text: str, kind: FieldKind) -> str | None:
    """The first character `text` may not hold in a field of this kind, if any."""
    pattern = _CONTROL_IN_TEXT if kind is FieldKind.TEXT else _CONTROL
    found = pattern.search(text)
    return found.group() if found else None


def control_character(value: object) -> InvalidInput | None:
    """The refusal for the first string or key of a JSON value holding a character it
    may not: keys and identifiers none of the control characters, free text only tabs
    and line breaks, nothing an unpaired surrogate."""
    stack: list[tuple[str, FieldKind, object]] = [("", FieldKind.TEXT, value)]
    while stack:
        path, kind, item = stack.pop()
        if isinstance(item, Mapping):
            for k, v in item.items():
                key = str(k)
                ch = bad_character(key, FieldKind.IDENTIFIER)
                if ch is not None:
                    where = f"a key of '{path}'" if path else "a key"
                    return InvalidInput(
                        "parameter_invalid", f"{where} holds {_describe(ch)}", param=path or None
                    )
                sub = f"{path}.{key}" if path else key
                stack.append((sub, field_kind(key), v))
        elif isinstance(item, list):
            stack.extend((f"{path}[{i}]", kind, v) for i, v in enumerate(item))
        elif isinstance(item, str):
            ch = bad_character(item, kind)
            if ch is not None:
                return InvalidInput(
                    "parameter_invalid", f"'{path}' holds {_describe(ch)}", param=path or None
                )
    return None


def body_refusal(body: bytes) -> tuple[int, dict[str, Any]] | None:
    """Why a JSON body is refused before the app parses it, as (status, error body);
    None to let it through (invalid JSON included: the app names that error)."""
    if too_deep(body):
        return 400, error_body(
            "invalid_json", f"the body nests arrays or objects deeper than {MAX_JSON_DEPTH} levels"
        )
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        if has_card_number(body.decode("utf-8", "replace")):
            return 400, error_body("card_data_not_allowed", CARD_DATA_MESSAGE)
        return None
    found = find_card_data(parsed)
    if found is not None:
        return 400, error_body("card_data_not_allowed", CARD_DATA_MESSAGE, param=found.param)
    if json.detect_encoding(body).startswith("utf-8") and not _MAY_HOLD_CONTROL.search(body):
        return None  # see _MAY_HOLD_CONTROL
    refused = control_character(parsed)
    if refused is not None:
        return 400, error_body(refused.code, refused.message, param=refused.param)
    return None


def _check_parameter(name: str, value: str, kind: FieldKind) -> None:
    if holds_card_number(value, kind):
        raise InvalidInput("card_data_not_allowed", CARD_DATA_MESSAGE, param=name)
    ch = bad_character(value, FieldKind.IDENTIFIER)
    if ch is not None:
        raise InvalidInput("parameter_invalid", f"'{name}' holds {_describe(ch)}", param=name)


def check_parameters(scope: Scope) -> None:
    """Path and query parameters and the Idempotency-Key header hold no card number (by
    the rules of their names, `field_kind`) and no control character."""
    for name, value in scope.get("path_params", {}).items():
        _check_parameter(name, str(value), field_kind(name))
    if scope.get("query_string"):
        for name, value in QueryParams(scope["query_string"]).multi_items():
            if has_card_number(name):
                raise InvalidInput("card_data_not_allowed", CARD_DATA_MESSAGE)
            ch = bad_character(name, FieldKind.IDENTIFIER)
            if ch is not None:
                raise InvalidInput(
                    "parameter_invalid", f"a query parameter's name holds {_describe(ch)}"
                )
            _check_parameter(name, value, field_kind(name))
    for header, value in scope["headers"]:
        if header == b"idempotency-key":  # the first, as Request.headers.get reads it
            _check_parameter("Idempotency-Key", value.decode("latin-1"), FieldKind.IDENTIFIER)
            break


async def safe_parameters(request: Request) -> None:
    """`check_parameters` as a dependency: for the routers of the console and the
    customers' pages, which api/app.py includes with it (their rooms sit below the API's,
    and their requests are not a hot path)."""
    check_parameters(request.scope)
