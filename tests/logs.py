"""Capturing every log line paymend writes (structlog and the standard library's
loggers alike) while a block runs, to assert what a log line may never hold."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from paymend.observability import configure_logging


@dataclass
class Captured:
    buffer: io.StringIO = field(default_factory=io.StringIO)

    @property
    def text(self) -> str:
        return self.buffer.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        """Every line, parsed: a line that is not JSON fails the test here."""
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]

    def holds(self, secret: str) -> bool:
        """`secret` appears in some line, as written or as JSON escapes it."""
        escaped = json.dumps(secret)[1:-1]
        return secret in self.text or escaped in self.text


@contextlib.contextmanager
def captured(level: str = "INFO") -> Iterator[Captured]:
    logs = Captured()
    configure_logging(level, stream=logs.buffer)
    try:
        yield logs
    finally:
        configure_logging("INFO")
