"""One pooled httpx client per event loop, for the connectors that speak HTTP.

The CLI, the server and the lab each run their own loop; an httpx client is bound to the
loop it first ran on, so a connector keeps one per loop (forgotten with the loop).
"""

from __future__ import annotations

import asyncio
import weakref

import httpx


class LoopClients:
    def __init__(self, timeout_s: float | None, transport: httpx.AsyncBaseTransport | None) -> None:
        self.timeout_s = timeout_s
        self._transport = transport
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )

    def get(self) -> httpx.AsyncClient:
        """The running loop's client, made on first use."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            timeout = httpx.Timeout(self.timeout_s) if self.timeout_s else httpx.Timeout(None)
            client = httpx.AsyncClient(transport=self._transport, timeout=timeout)
            self._clients[loop] = client
        return client

    async def aclose(self) -> None:
        """Close the running loop's client, if it has one."""
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()
