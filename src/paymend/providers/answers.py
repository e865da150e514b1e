"""What the HTTP connectors (Alipay, WeChat Pay, Adyen) share about a provider's answer:
the error for one that cannot be believed, and the answer that can.

An answer that cannot be read, or whose signature does not verify, is never a refusal:
whatever it says, the call's outcome is unknown and the engine asks the provider before
anything else (its `raw_code` is in no code map: `unrecognized_response`, query first).
Each connector's client says when an answer is believed and what `ok` means for it
(an HTTP 2xx; for Alipay, whose answers are all HTTP 200, the node's `code` 10000).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class AnswerNotTrusted(Exception):
    """The provider's answer cannot be read or is not signed by the provider: the
    call's outcome is unknown. `raw_code` names why (`RESPONSE_UNREADABLE`, …)."""

    def __init__(self, raw_code: str, message: str) -> None:
        super().__init__(message)
        self.raw_code = raw_code


@dataclass(frozen=True, slots=True)
class Answer:
    """One believed answer: its HTTP status and its JSON object ({} when empty)."""

    status: int
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def text(self, name: str) -> str | None:
        """The body's field `name` as text; None when absent or empty."""
        value = self.body.get(name)
        return str(value) if value not in (None, "") else None
