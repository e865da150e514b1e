"""What a notification channel offers: send one message, say what became of it.

A channel is one way of reaching someone: a merchant's webhook endpoint, a customer's
phone (SMS) or inbox (email), WeChat, an ops chat. The engine decides what to say, to
whom and when (the outbox, policies, retries with their schedule); the channel only
carries one rendered message and reports the receiving end's answer. Every try of one
notification carries the same `dedupe_key`, so a receiver, or a gateway that supports
it, drops repeats: delivery is at least once, never knowingly twice.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class Message:
    dedupe_key: str  # the same for every try of one notification (a webhook: the event id)
    recipient: str  # where it goes: a URL, a phone number, an address, a chat
    body: bytes  # rendered and encoded, in the recipient's language
    headers: Mapping[str, str] = field(default_factory=dict)  # the channel's own: a signature


@dataclass(frozen=True, slots=True)
class Sent:
    """What became of one try. `code`: the receiving end's answer (an HTTP status, an
    SMS gateway's code), None when none came; `error`: why it did not arrive."""

    delivered: bool
    code: int | None = None
    error: str | None = None
    retryable: bool = True  # False: trying again cannot help (an invalid number)


@runtime_checkable
class Channel(Protocol):
    name: str

    async def send(self, message: Message) -> Sent:
        """Try once; never raises for the receiving end's failures (they are `Sent`)."""
        ...

    async def close(self) -> None:
        """Release connections; the channel may be used again afterwards."""
        ...


def sms_body(template: str, params: dict[str, str], text: str) -> bytes:
    """What a template-based SMS channel carries: the id, its parameters, and the text it
    reads as (for logs of length and for channels without templates)."""
    return json.dumps(
        {"template": template, "params": params, "text": text}, ensure_ascii=False
    ).encode()
