"""What every protocol face shares: the ASGI preamble (lifespan, the request's body),
the simulated channel's faults on the wire (an outage, a lost answer, a hung call that
ends when the face is released), and the base URL a request came to.

A face serves one simulated channel over its provider's wire protocol. A simulated hang
(a timeout that may still charge) must end when the server stops, or uvicorn waits for
it forever: `release()` ends every one of them, from any thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, MutableMapping
from datetime import datetime
from typing import Any, TypeVar

import httpx

from paymend.domain.clock import Clock
from paymend.providers.base import ProviderConnectionError

Scope = MutableMapping[str, Any]  # an ASGI scope, as servers and httpx type it
T = TypeVar("T")


class Releasable:
    """A face's hung calls and its ASGI preamble. Subclasses (dataclasses) declare
    `released: asyncio.Event` and `_loop: asyncio.AbstractEventLoop | None`."""

    released: asyncio.Event
    _loop: asyncio.AbstractEventLoop | None

    def release(self) -> None:
        """End every hung call (before the server stops), from any thread."""
        loop = self._loop
        if loop is None or loop.is_closed():
            self.released.set()
        else:
            loop.call_soon_threadsafe(self.released.set)

    async def request_body(self, scope: Scope, receive: Any, send: Any) -> bytes | None:
        """The request's whole body; None for the lifespan protocol, answered here."""
        self._loop = asyncio.get_running_loop()
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            self.release()
            await send({"type": "lifespan.shutdown.complete"})
            return None
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        return body


async def outage(send: Any, down: bool) -> bool:
    """Answer 503, as a load balancer in front of a provider that is down does, when
    `down` (the simulated channel's outage). True if it answered."""
    if down:
        await send_response(send, 503, b"Service Unavailable")
    return down


async def through_faults(send: Any, call: Awaitable[T]) -> T | None:
    """`call`'s answer, or None when the simulated channel's fault decided there is none
    to send: a lost answer starts the response and drops the connection (re-raised, so
    the server cuts it mid-answer); a hang released at shutdown sends nothing (its caller
    left long ago)."""
    try:
        return await call
    except ProviderConnectionError as exc:
        if exc.raw_code == "CONNECTION_RESET":
            start = {"type": "http.response.start", "status": 200}
            await send({**start, "headers": [(b"content-length", b"1000")]})
            raise
        return None


async def deliver(
    url: str,
    content: bytes,
    headers: dict[str, str],
    transport: httpx.AsyncBaseTransport | None,
) -> httpx.Response:
    """POST a notification the face sends on its own (to paymend's notification
    endpoint), over the network or the given in-process transport."""
    async with httpx.AsyncClient(transport=transport, timeout=10) as client:
        return await client.post(url, content=content, headers=headers)


class HangClock:
    """The simulated channel's clock, but a wait as long as a hang lasts until the
    caller gives up or the face is released, whichever the test needs."""

    def __init__(self, inner: Clock, hang_s: float, face: Releasable) -> None:
        self.inner = inner
        self.hang_s = hang_s
        self.face = face

    def now(self) -> datetime:
        return self.inner.now()

    def monotonic(self) -> float:
        return self.inner.monotonic()

    async def sleep(self, seconds: float) -> None:
        if seconds < self.hang_s:
            await self.inner.sleep(seconds)
            return
        await self.face.released.wait()
        raise ProviderConnectionError("HANG_RELEASED", "released", sent=True)


def base_url(scope: Scope) -> str:
    """Where the request came to (scheme and host), for URLs the face hands out."""
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
    host = headers.get("host") or "{}:{}".format(*scope.get("server", ("127.0.0.1", 80)))
    return f"{scope.get('scheme', 'http')}://{host}"


async def send_response(
    send: Any,
    status: int,
    body: bytes,
    ctype: str = "text/plain",
    extra: dict[str, str] | None = None,
) -> None:
    """One whole HTTP answer over ASGI, with `extra` headers (a signature, a serial)."""
    headers = [(b"content-type", ctype.encode()), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in (extra or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
