"""The webhook sender is a notification channel like any other will be: one message
with its dedupe key in, what became of it out."""

from __future__ import annotations

import asyncio
import socket

from paymend.notify.channel import Channel, Message
from paymend.notify.webhook_channel import WebhookChannel


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once the socket is closed


def test_the_webhook_sender_is_a_channel() -> None:
    assert isinstance(WebhookChannel(), Channel)


def test_an_endpoint_that_refuses_the_connection_is_not_delivered_and_may_be_retried() -> None:
    async def scenario() -> None:
        channel = WebhookChannel(timeout_s=5.0)
        url = f"http://127.0.0.1:{closed_port()}/hooks"
        try:
            sent = await channel.send(Message("evt_1", url, b"{}"))
        finally:
            await channel.close()
        assert (sent.delivered, sent.code, sent.retryable) == (False, None, True)
        assert sent.error is not None and "Connect" in sent.error

    asyncio.run(scenario())
