"""The store's threads (store/handoff.py): every call answered once, on its caller's loop."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable
from typing import Any, TypeVarTuple

import pytest

from paymend.store.handoff import Handoff


def _double(n: int) -> tuple[int, str]:
    if n % 7 == 3:
        raise ValueError(f"refused {n}")
    return n * 2, threading.current_thread().name


def test_each_caller_gets_its_own_answer_or_error_from_a_store_thread() -> None:
    handoff = Handoff(3, "t-store")

    async def scenario() -> list[Any]:
        return await asyncio.gather(
            *(handoff.run(_double, n) for n in range(60)), return_exceptions=True
        )

    try:
        answers = asyncio.run(scenario())
    finally:
        handoff.shutdown()
    for n, answer in enumerate(answers):
        if n % 7 == 3:
            assert isinstance(answer, ValueError) and str(answer) == f"refused {n}"
        else:
            doubled, thread = answer
            assert doubled == n * 2
            assert thread.startswith("t-store_") and thread != threading.current_thread().name


def test_a_call_whose_caller_left_before_a_thread_took_it_is_not_run() -> None:
    handoff = Handoff(1, "t-store")
    started, release = threading.Event(), threading.Event()
    ran: list[str] = []

    def first(_: None) -> str:
        started.set()
        release.wait()
        ran.append("first")
        return "first"

    async def scenario() -> str:
        blocking = handoff.run(first, None)
        left = handoff.run(ran.append, "second")
        await asyncio.get_running_loop().run_in_executor(None, started.wait)
        left.cancel()  # the one thread is busy: the second call waits in the queue
        release.set()
        return await blocking

    try:
        assert asyncio.run(scenario()) == "first"
    finally:
        handoff.shutdown()  # the second call has been taken off the queue by now
    assert ran == ["first"]


def test_shutdown_lets_every_call_handed_so_far_end_and_refuses_new_ones() -> None:
    handoff = Handoff(2, "t-store")
    ran: list[int] = []

    async def scenario() -> None:
        futures = [handoff.run(ran.append, n) for n in range(10)]
        handoff.shutdown()  # waits on this thread: the loop reads the answers after
        assert sorted(ran) == list(range(10))
        assert await asyncio.gather(*futures) == [None] * 10
        with pytest.raises(RuntimeError, match="closed"):
            handoff.run(ran.append, 99)

    asyncio.run(scenario())
    assert len(ran) == 10


def test_answers_go_to_the_loop_of_their_caller_one_loop_after_another() -> None:
    handoff = Handoff(2, "t-store")
    try:
        for _ in range(3):  # a new loop each time, as successive `asyncio.run` calls
            answer = asyncio.run(_one(handoff))
            assert answer[0] == 8
    finally:
        handoff.shutdown()


async def _one(handoff: Handoff) -> tuple[int, str]:
    return await handoff.run(_double, 4)


Ts = TypeVarTuple("Ts")


class _CountingLoop(asyncio.SelectorEventLoop):
    """An event loop that counts how often another thread woke it."""

    wakeups = 0

    def call_soon_threadsafe(
        self,
        callback: Callable[[*Ts], object],
        *args: *Ts,
        context: contextvars.Context | None = None,
    ) -> asyncio.Handle:
        self.wakeups += 1
        return super().call_soon_threadsafe(callback, *args, context=context)


def test_answers_that_arrive_while_the_loop_is_busy_wake_it_once() -> None:
    """The loop is woken once for every answer it has not yet read, not once per answer:
    a wake-up is a system call on both sides and a turn of the loop."""
    handoff = Handoff(2, "t-store")
    loop = _CountingLoop()

    async def scenario() -> list[int]:
        futures = [handoff.run(int, n) for n in range(20)]
        handoff.shutdown()  # the loop is busy (blocked here) while every answer arrives
        return await asyncio.gather(*futures)

    try:
        assert loop.run_until_complete(scenario()) == list(range(20))
    finally:
        handoff.shutdown()
        loop.close()
    assert loop.wakeups == 1
