"""What the connectors that speak HTTP share: one pooled httpx client per event loop,
and what a call that got no answer means.

The CLI, the server and the lab each run their own loop; an httpx client is bound to the
loop it first ran on, so a connector keeps one per loop (forgotten with the loop).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from paymend.providers.base import ProviderConnectionError


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


@contextmanager
def transport_failures(who: str) -> Iterator[None]:
    """httpx's failures below the answer, raised as ProviderConnectionError named for
    `who`. What matters is whether the request may have reached the provider: a
    connection never made (refused, its connect or the pool timed out) cannot have
    charged, so the call failed cleanly; a read that timed out, or a connection reset
    or closed mid-answer, may have, so the outcome is unknown and must be queried."""
    try:
        yield
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        raise ProviderConnectionError(
            "CONNECTION_REFUSED", f"{who}: {type(exc).__name__}", sent=False
        ) from None
    except httpx.TimeoutException as exc:
        raise ProviderConnectionError(
            "READ_TIMEOUT", f"{who}: {type(exc).__name__}", sent=True
        ) from None
    except httpx.TransportError as exc:  # reset, closed mid-answer, protocol error
        raise ProviderConnectionError(
            "CONNECTION_RESET", f"{who}: {type(exc).__name__}", sent=True
        ) from None
