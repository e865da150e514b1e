"""Email through apprise's SMTP plugin: a notice's subject, with its HTML part and the
plain-text alternative apprise derives from it.

The message body is JSON `{"subject", "text", "html"}` (engine/customer_notices.py
renders it). The SMTP server, sender and login are an apprise `mailto://` or
`mailtos://` URL without the password; the password comes from the environment
(`PAYMEND_SMTP_PASSWORD`). apprise answers only "sent or not": a refusal is reported
as retryable, as apprise does not tell a full mailbox from a server that is down.
"""

from __future__ import annotations

import asyncio
import json
import os
from urllib.parse import quote, urlsplit, urlunsplit

import apprise

from paymend.notify.channel import Message, Sent


class EmailChannel:
    name = "email"

    def __init__(self, url: str, password: str | None = None) -> None:
        """`url`: e.g. `mailtos://shop@smtp.example.com:465?from=shop@example.com`."""
        self.url = _with_password(url, password or os.environ.get("PAYMEND_SMTP_PASSWORD"))

    async def send(self, message: Message) -> Sent:
        content = json.loads(message.body)
        sep = "&" if "?" in self.url else "?"
        target = f"{self.url}{sep}to={quote(message.recipient, safe='@')}"
        ap = apprise.Apprise()
        if not ap.add(target):
            return Sent(False, error="the SMTP URL is not valid for apprise", retryable=False)
        # apprise's own async dispatch times out on the event loop's clock, which jumps
        # under virtual time: its blocking dispatch runs in a thread instead
        ok = await asyncio.to_thread(
            ap.notify,
            body=content["html"],
            title=content["subject"],
            body_format=apprise.NotifyFormat.HTML,
        )
        return Sent(bool(ok), error=None if ok else "SMTP send failed (apprise)")

    async def close(self) -> None:
        return None


def _with_password(url: str, password: str | None) -> str:
    if not password:
        return url
    parts = urlsplit(url)
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    netloc = f"{quote(user)}:{quote(password, safe='')}@{host}{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
