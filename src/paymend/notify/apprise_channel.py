"""Any apprise destination as a notification channel: a WeCom, DingTalk, Feishu or Slack
group bot, or a generic JSON endpoint (`json://` / `jsons://`, apprise's documented
`{"version", "title", "message", "type"}` body) for tools of the shop's own.

The destination is the configured URL; the message's recipient, when the URL has a
`{recipient}` placeholder, is put there (a chat id, a user). The body is JSON with
`subject` and `text` (engine/customer_notices.py renders it). apprise answers only
"sent or not", so a failure is retryable and the engine's schedule decides.
"""

from __future__ import annotations

import asyncio
import json
from urllib.parse import quote

import apprise

from paymend.notify.channel import Message, Sent


class AppriseChannel:
    def __init__(self, name: str, url: str) -> None:
        self.name = name
        self.url = url

    async def send(self, message: Message) -> Sent:
        content = json.loads(message.body)
        target = self.url.replace("{recipient}", quote(message.recipient, safe=""))
        ap = apprise.Apprise()
        if not ap.add(target):
            return Sent(False, error=f"not an apprise URL for {self.name}", retryable=False)
        # apprise's own async dispatch times out on the event loop's clock, which jumps
        # under virtual time: its blocking dispatch runs in a thread instead
        ok = await asyncio.to_thread(
            ap.notify, body=content["text"], title=content.get("subject", "")
        )
        return Sent(bool(ok), error=None if ok else f"{self.name}: not accepted (apprise)")

    async def close(self) -> None:
        return None
