"""Blocking store work handed from the event loop to the store's threads, and back.

On PostgreSQL every transaction runs on one of the store's threads, two or three times a
payment. `loop.run_in_executor` does that through two futures for each call, a
`concurrent.futures.Future` (with its own condition variable) chained to an asyncio one,
and wakes the loop once for every call that ends. `Handoff` hands the call to a thread
through a `queue.SimpleQueue` and answers the loop's own future: the threads put what
they finished in an inbox, and the loop is woken once for all that finished before it
got round to reading it. Measured on PostgreSQL (`SELECT 1` a call, 16 in flight, 2
cores): 103-156 µs of the process's CPU a call, against 208-252 µs through
`run_in_executor`.

A call whose caller was cancelled before a thread took it is not run, as with an
executor; one already running runs to its end and its answer is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["Handoff"]

T = TypeVar("T")
A = TypeVar("A")


class _Inbox:
    """One event loop's finished calls, and whether the loop has been woken to read them."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.done: deque[tuple[asyncio.Future[Any], bool, Any]] = deque()
        self.woken = False

    def put(self, future: asyncio.Future[Any], ok: bool, value: Any) -> None:
        """On a store thread: the answer, and one wake-up for all not yet read."""
        self.done.append((future, ok, value))
        if self.woken:
            return  # the loop reads this one with the others (`read`)
        self.woken = True
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits for it
            self.loop.call_soon_threadsafe(self.read)

    def read(self) -> None:
        """On the loop: every answer that arrived, to its caller."""
        # cleared before reading: an answer put after the last read wakes the loop again
        self.woken = False
        done = self.done
        while done:
            future, ok, value = done.popleft()
            if future.cancelled():
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)


_STOP = None  # a thread that takes this ends


class Handoff:
    """`workers` threads running the calls coroutines hand them (`run`)."""

    def __init__(self, workers: int, name: str) -> None:
        self._workers = workers
        self._name = name
        self._calls: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._inboxes: dict[asyncio.AbstractEventLoop, _Inbox] = {}
        self._lock = threading.Lock()  # starting the threads, shutting them down
        self._closed = False

    def run(self, fn: Callable[[A], T], arg: A) -> asyncio.Future[T]:
        """`fn(arg)` on one of the threads; the future the running loop awaits for it."""
        if self._closed:
            raise RuntimeError("the store is closed")
        loop = asyncio.get_running_loop()
        inbox = self._inboxes.get(loop)
        if inbox is None:
            inbox = self._inbox(loop)
        future: asyncio.Future[T] = loop.create_future()
        self._calls.put((fn, arg, future, inbox))
        return future

    def _inbox(self, loop: asyncio.AbstractEventLoop) -> _Inbox:
        with self._lock:
            if self._closed:
                raise RuntimeError("the store is closed")
            if not self._threads:
                for i in range(self._workers):
                    thread = threading.Thread(
                        target=self._serve, name=f"{self._name}_{i}", daemon=True
                    )
                    thread.start()
                    self._threads.append(thread)
            # a loop that has closed is not asked again: its inbox goes
            self._inboxes = {lp: box for lp, box in self._inboxes.items() if not lp.is_closed()}
            inbox = self._inboxes[loop] = _Inbox(loop)
            return inbox

    def _serve(self) -> None:
        take = self._calls.get
        while (call := take()) is not _STOP:
            fn, arg, future, inbox = call
            if future.cancelled():
                continue  # its caller has gone: not started, not run
            try:
                value = fn(arg)
            except BaseException as error:  # noqa: BLE001 - handed to its caller
                inbox.put(future, False, error)
            else:
                inbox.put(future, True, value)

    def shutdown(self) -> None:
        """Let every call handed so far end, then stop the threads."""
        with self._lock:
            self._closed = True
            threads, self._threads = self._threads, []
        for _ in threads:
            self._calls.put(_STOP)
        for thread in threads:
            thread.join()
