"""What the app keeps for its routes (`app.state`), read on every request."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from starlette.datastructures import State

if TYPE_CHECKING:
    from paymend.customers.web import Pages
    from paymend.engine.runtime import Runtime


class AppState(State):
    """Starlette's `State`, with paymend's entries given at once and read as properties.

    `State` keeps its entries in a dict behind `__getattr__`, which Python calls only
    after the ordinary lookup has failed and made an AttributeError: the seven reads of
    a payment were 1 % of its instructions (callgrind, bench/payment_cpu.py). A property
    is found by the ordinary lookup. Other entries are set and read as on any `State`."""

    def __init__(self, runtime: Runtime, stopping: asyncio.Event, customer_pages: Pages) -> None:
        super().__init__(
            {
                "runtime": runtime,
                "stopping": stopping,
                "key_cache": {},
                "customer_pages": customer_pages,
            }
        )

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self["runtime"]
        return runtime

    @property
    def stopping(self) -> asyncio.Event:
        """Set: the worker stops (api/app.py `create_app`)."""
        stopping: asyncio.Event = self["stopping"]
        return stopping

    @property
    def key_cache(self) -> dict[str, Any]:
        """api/auth.py: an API key's hash -> its merchant, briefly."""
        cache: dict[str, Any] = self["key_cache"]
        return cache

    @property
    def customer_pages(self) -> Pages:
        pages: Pages = self["customer_pages"]
        return pages
