"""Which paymend processes are alive: a dead one on this machine is known at once, one
elsewhere when its heartbeat goes stale; a clean stop says so itself."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta

import pytest

from paymend.engine.liveness import LivenessSettings, Presence, process_started, this_host
from paymend.store import instances, jobs
from paymend.store.database import Store
from paymend.store.instances import Instance
from tests.helpers import NOW, ManualClock

pytestmark = pytest.mark.skipif(
    this_host().boot_id is None, reason="needs Linux /proc to tell pids on this host"
)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url, inline=True)
    yield s
    s.close()


@contextlib.contextmanager
def running_process() -> Iterator[int]:
    """The pid of a real process that runs until the block ends."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait(timeout=30)


def gone_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=30)
    return child.pid


def other(
    store: Store,
    instance_id: str,
    pid: int,
    *,
    local: bool = True,
    pid_started: int | None = None,
    heartbeat_age_s: float = 0.0,
) -> None:
    """Register an instance as another process would (on this machine, or elsewhere)."""
    host = this_host()
    row = Instance(
        id=instance_id,
        role="serve",
        hostname=host.hostname if local else "elsewhere",
        boot_id=host.boot_id if local else "another-machine",
        pid_namespace=host.pid_namespace,
        pid=pid,
        pid_started=pid_started if pid_started is not None else process_started(pid),
        started_at=NOW - timedelta(minutes=5),
        heartbeat_at=NOW - timedelta(seconds=heartbeat_age_s),
    )
    store.run_sync(lambda c: instances.register(c, row))


def stop_reason(store: Store, instance_id: str) -> str | None:
    found = store.run_sync(lambda c: instances.get(c, instance_id))
    assert found is not None
    return found.stop_reason if found.stopped_at is not None else None


def test_a_process_gone_from_this_machine_is_dead_at_once(store: Store) -> None:
    async def scenario() -> None:
        clock = ManualClock()
        me = Presence(store, clock, "serve", LivenessSettings(1.0, 30.0))
        other(store, "ins_killed", gone_pid())  # its last beat was just now
        other(store, "ins_reused", os.getppid(), pid_started=1)  # that pid runs another program
        other(store, "ins_our_pid", os.getpid(), pid_started=process_started(os.getpid()))
        with running_process() as pid:
            other(store, "ins_running", pid)  # alive: a real process that beats
            await me.start()  # the first look, no time passed
            assert stop_reason(store, "ins_running") is None
        assert stop_reason(store, "ins_killed") == "pid_gone"
        assert stop_reason(store, "ins_reused") == "pid_reused"
        assert stop_reason(store, "ins_our_pid") == "pid_is_ours"
        await me.tick()  # that process was killed when its block ended
        assert stop_reason(store, "ins_running") == "pid_gone"

    asyncio.run(scenario())


def test_a_process_elsewhere_is_dead_when_its_heartbeat_is_stale(store: Store) -> None:
    async def scenario() -> None:
        clock = ManualClock()
        me = Presence(store, clock, "worker", LivenessSettings(1.0, 5.0))
        other(store, "ins_remote", 4242, local=False)
        await me.start()
        clock.advance(4.9)
        await me.tick()
        assert stop_reason(store, "ins_remote") is None
        clock.advance(0.2)
        await me.tick()
        assert stop_reason(store, "ins_remote") == "heartbeat_stale"

    asyncio.run(scenario())


def test_a_clean_stop_is_recorded_and_a_stall_taken_for_death_heals(store: Store) -> None:
    async def scenario() -> None:
        clock = ManualClock()
        first = Presence(store, clock, "serve", LivenessSettings(1.0, 5.0))
        second = Presence(store, clock, "worker", LivenessSettings(1.0, 5.0))
        a, b = await first.start(), await second.start()
        clock.advance(6)  # `first` stalls: no beat for longer than dead_after
        await second.tick()
        assert stop_reason(store, a) == "heartbeat_stale"
        await first.tick()  # it beats again: alive from now on
        assert stop_reason(store, a) is None
        await second.stop()
        assert stop_reason(store, b) == "stopped"
        await first.stop()

    asyncio.run(scenario())


def test_a_stalled_process_does_not_take_its_own_running_job_for_an_orphan(store: Store) -> None:
    """A worker whose heartbeat looks stale (its loop stalled) is still alive: its next
    sweep must not claim the job it is running again (a notice sent twice); another
    process takes the job, as an orphan's."""
    other(store, "ins_me", 4242, local=False, heartbeat_age_s=60)
    store.run_sync(lambda c: jobs.enqueue(c, "job_1", jobs.JobKind.SEND_NOTICE, "pay_1", NOW, NOW))

    def claim(owner: str) -> list[str]:
        taken = store.run_sync(
            lambda c: jobs.claim(
                c, NOW, timedelta(seconds=30), 10, owner=owner, dead_after=timedelta(seconds=5)
            )
        )
        return [j.id for j in taken]

    assert claim("ins_me") == ["job_1"]
    assert claim("ins_me") == []  # its own lease: not an orphan to itself
    assert claim("ins_other") == ["job_1"]  # to another process, its owner looks dead
