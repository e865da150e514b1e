"""The error statuses a route documents, with the codes each can carry.

A route names the errors of its own work (`errors(404, payment_not_found=…)`); what every
request can get before it reaches a route (the guard's refusals, authentication, a busy
server) `api/openapi.py` adds from what the route is. Each documented error is the
error object `api/errors.py` makes, `{"error": {"type", "code", "message", "param"}}`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

CODES_KEY = "x-error-codes"  # the codes of one documented status, in the document too

# what each status means, whatever the route
STATUS_MEANING: Mapping[int, str] = {
    400: "Bad input; nothing was changed",
    401: "No key, or not a valid one",
    403: "The operator's role is too low",
    404: "No such object (or not yours)",
    408: "The request's head or body did not arrive in time; the connection is closed",
    409: "Conflicts with the object's current state or with another request",
    413: "The body is larger than 64 KiB",
    415: "The body is not `application/json`",
    431: "The request's head is too large",
    500: "A bug: logged with its type and place under the response's `X-Trace-Id`",
    503: "Unavailable for a moment: retry after `Retry-After` seconds",
}


def errors(*by_status: tuple[int, Iterable[str]]) -> dict[int | str, dict[str, Any]]:
    """The `responses` of a route for the errors of its own work, as (status, codes):
    `errors((404, ["payment_not_found"]), (409, ["payment_not_refundable"]))`."""
    return {status: {CODES_KEY: list(codes)} for status, codes in by_status}


def describe(status: int, codes: Iterable[str]) -> str:
    """A status's description in the document: what it means and its codes."""
    listed = ", ".join(f"`{c}`" for c in sorted(set(codes)))
    meaning = STATUS_MEANING.get(status, "Error")
    return f"{meaning}: {listed}" if listed else meaning
