"""Which paymend processes are alive, so what a dead one owned is taken over in seconds.

Each process registers an *instance* (store/instances.py) and beats every
`heartbeat_s`. Another instance is known dead

- at once when it runs on this host (same Linux boot id and pid namespace, read from
  /proc) and its pid no longer runs, now runs another program (a different start time),
  or is our own pid while the instance is not one of ours: a process killed and
  restarted on one machine is found dead on the restart's first look;
- otherwise when its heartbeat is older than `dead_after_s`, whatever the machine
  (heartbeats are stamped with each machine's clock: keep them synchronised, NTP,
  well within `dead_after_s`).

A dead instance is marked stopped in the database, so SQL alone tells every process
which owners are gone (`store.instances.live_owner`). A clean stop marks the instance
stopped too. Being taken for dead while alive (a stall) is safe: every take-over is
guarded by a version, a claim token or the provider's idempotency key.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from paymend.domain.clock import Clock
from paymend.domain.errors import Unavailable
from paymend.engine.ids import IdFactory
from paymend.observability import get_logger
from paymend.store import instances
from paymend.store.database import Connection, Store
from paymend.store.instances import Instance

log = get_logger("paymend.liveness")
PROC = Path("/proc")
FORGET_AFTER = timedelta(days=7)  # stopped instances are kept this long, then pruned
_OURS: set[str] = set()  # instances registered by this very process (tests run several)


@dataclass(slots=True)
class Owner:
    """The instance this process registered, once Presence has started: pending attempts
    and claimed jobs name it, so they are taken over at once when it dies. None: no
    instance (the lab, tests): a pending attempt is orphaned only by its age."""

    id: str | None = None


@dataclass(frozen=True, slots=True)
class Host:
    """Where a process runs, as far as its pids can be checked from here."""

    hostname: str
    boot_id: str | None  # None: no /proc (not Linux): only heartbeats tell
    pid_namespace: str | None

    def same_pids(self, other: Instance) -> bool:
        """Are `other`'s pids ours to check: same kernel boot, same pid namespace?"""
        return (
            self.boot_id is not None
            and self.pid_namespace is not None
            and other.boot_id == self.boot_id
            and other.pid_namespace == self.pid_namespace
        )


def this_host() -> Host:
    boot_id = namespace = None
    with contextlib.suppress(OSError):
        boot_id = (PROC / "sys/kernel/random/boot_id").read_text().strip()
        namespace = os.readlink(PROC / "self/ns/pid")  # e.g. pid:[4026531836]
    return Host(socket.gethostname(), boot_id, namespace)


def process_started(pid: int) -> int | None:
    """The process's start time in clock ticks after boot (field 22 of /proc/PID/stat):
    a pid that runs with another start time is another program."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # the command name (field 2) is in parentheses and may hold spaces: split after it
    fields = stat[stat.rfind(")") + 2 :].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def pid_runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it runs
    return True


def why_dead(other: Instance, host: Host, now: datetime, dead_after: timedelta) -> str | None:
    """Why `other` is dead, or None when it may be alive."""
    if other.stopped_at is not None:
        return other.stop_reason or "stopped"
    if host.same_pids(other) and other.id not in _OURS:  # ours: this process, which runs
        if other.pid == os.getpid():
            return "pid_is_ours"
        if not pid_runs(other.pid):
            return "pid_gone"
        started = process_started(other.pid)
        if other.pid_started is not None and started is not None and started != other.pid_started:
            return "pid_reused"
    if now - other.heartbeat_at > dead_after:
        return "heartbeat_stale"
    return None


@dataclass(frozen=True, slots=True)
class LivenessSettings:
    heartbeat_s: float = 1.0
    dead_after_s: float = 5.0  # a heartbeat older than this: dead, wherever it runs

    @property
    def dead_after(self) -> timedelta:
        return timedelta(seconds=self.dead_after_s)


class Presence:
    """This process's instance: registered by `start`, kept alive by `run`, marked stopped
    by `stop`. Each beat also looks for dead instances and marks them stopped."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        role: str,
        settings: LivenessSettings | None = None,
        host: Host | None = None,
        on_start: Callable[[str], None] | None = None,
        on_beat: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.role = role
        self.settings = settings or LivenessSettings()
        self.host = host or this_host()
        self.id: str | None = None
        self._on_start = on_start  # told the instance id once registered
        self._on_beat = on_beat  # every beat: what must not wait longer (health records)

    async def start(self) -> str:
        now = self.clock.now()
        pid = os.getpid()
        me = Instance(
            id=IdFactory().new("ins"),
            role=self.role,
            hostname=self.host.hostname,
            boot_id=self.host.boot_id,
            pid_namespace=self.host.pid_namespace,
            pid=pid,
            pid_started=process_started(pid) if self.host.boot_id else None,
            started_at=now,
            heartbeat_at=now,
        )
        forget = now - FORGET_AFTER

        def register(conn: Connection) -> None:
            instances.prune(conn, forget)
            instances.register(conn, me)

        await self.store.run(register)
        self.id = me.id
        _OURS.add(me.id)
        if self._on_start is not None:
            self._on_start(me.id)
        log.info("instance_started", instance_id=me.id, role=self.role, pid=pid)
        await self.tick()  # what a killed predecessor owned is free from the first sweep
        return me.id

    async def try_start(self) -> bool:
        """`start`, unless the database is out of reach: then the beats try again (the
        process serves meanwhile, answering 503 where it needs the database)."""
        try:
            await self.start()
        except Unavailable as exc:
            log.warning("instance_not_registered", code=exc.code)
            return False
        return True

    async def tick(self) -> list[str]:
        """Beat, then mark every instance found dead; their ids."""
        me, now = self.id, self.clock.now()

        def work(conn: Connection) -> tuple[bool, list[tuple[str, str]]]:
            alive = instances.beat(conn, me, now) if me is not None else True
            dead = []
            for other in instances.running(conn, excluding=me):
                reason = why_dead(other, self.host, now, self.settings.dead_after)
                if reason is not None and instances.mark_stopped(conn, other.id, now, reason):
                    dead.append((other.id, reason))
            return alive, dead

        alive, dead = await self.store.run(work)
        if not alive:
            log.warning("instance_was_taken_for_dead", instance_id=me)
        for instance_id, reason in dead:
            log.warning("instance_dead", instance_id=instance_id, reason=reason)
        return [instance_id for instance_id, _ in dead]

    def owner_dead(self, conn: Connection, owner: str | None) -> bool:
        """Is the instance `owner` dead (marking it so)? Unknown owners are dead: they were
        pruned long ago. None (a row written without an instance) is not: the caller's
        age rule decides."""
        if owner is None:
            return False
        other = instances.get(conn, owner)
        if other is None:
            return True
        now = self.clock.now()
        reason = why_dead(other, self.host, now, self.settings.dead_after)
        if reason is None:
            return False
        if other.stopped_at is None:
            instances.mark_stopped(conn, other.id, now, reason)
        return True

    async def run(self, stop: asyncio.Event) -> None:
        """Beat every `heartbeat_s` until `stop` is set; a failed beat is logged only."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.settings.heartbeat_s)
            if stop.is_set():
                return
            if self.id is None:
                await self.try_start()
                continue
            try:
                if self._on_beat is not None:
                    self._on_beat()
                await self.tick()
            except Exception:  # the next beat tries again
                log.exception("heartbeat_failed", instance_id=self.id)

    async def stop(self) -> None:
        """A clean stop: anything this instance still owns is free for others at once."""
        me = self.id
        if me is None:
            return
        now = self.clock.now()
        await self.store.run(lambda conn: instances.mark_stopped(conn, me, now, "stopped"))
        _OURS.discard(me)
        log.info("instance_stopped", instance_id=me)
