"""Breakers shared through Redis: the same rules, one state for every process."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
import redis

from paymend.health.breaker import BreakerSettings, BreakerState
from paymend.health.outcomes import Outcome
from paymend.health.redis_book import FLUSH_AFTER_S, FLUSH_AT, RedisHealthBook
from tests.health.early_probe import check_early_probes, check_in_flight_success_proves_nothing
from tests.health.settling import (
    check_a_correction_never_counts_a_call_twice,
    check_a_found_charge_counts_as_a_success,
)

pytestmark = pytest.mark.redis
T, B, S = Outcome.TECHNICAL, Outcome.BUSINESS, Outcome.SUCCESS


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    name = f"paymend-test-{uuid.uuid4().hex[:8]}"
    yield name
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(f"{name}:*"):
        client.delete(key)
    client.close()


def book(url: str, prefix: str, **settings: float) -> RedisHealthBook:
    return RedisHealthBook(redis.Redis.from_url(url), BreakerSettings(**settings), prefix)  # type: ignore[arg-type]


def test_the_rules_hold_in_redis(redis_url: str, prefix: str) -> None:
    b = book(redis_url, prefix, open_s=10, probes=2)
    for i in range(200):
        b.record(["sim_a"], 1000 + i * 0.01, B)  # declines never open it
    assert b.state("sim_a") is BreakerState.CLOSED
    for i in range(5):
        b.record(["sim_a"], 1010 + i * 0.01, T)
    assert b.state("sim_a") is BreakerState.OPEN
    assert not b.allow("sim_a", 1011)
    assert b.allow("sim_a", 1021)
    assert not b.allow("sim_a", 1021.1)  # one probe out at a time
    b.record(["sim_a"], 1021.5, S)
    assert b.allow("sim_a", 1021.6)
    b.record(["sim_a"], 1021.7, S)
    assert b.state("sim_a") is BreakerState.CLOSED
    assert [t.after for t in b.transitions] == [
        BreakerState.OPEN,
        BreakerState.HALF_OPEN,
        BreakerState.CLOSED,
    ]


def test_an_error_rate_opens_it_in_redis(redis_url: str, prefix: str) -> None:
    b = book(redis_url, prefix, consecutive=100, error_rate=0.5, min_calls=20, window_s=10)
    for i in range(40):
        b.record(["sim_b"], 2000 + i * 0.1, T if i % 2 else S)
    assert b.state("sim_b") is BreakerState.OPEN
    assert "error rate" in b.transitions[0].why


def test_two_processes_share_one_breaker(redis_url: str, prefix: str) -> None:
    """Another paymend process sees the channel fail; this one stops calling it."""
    other = (
        "import redis, sys\n"
        "from paymend.health.redis_book import RedisHealthBook\n"
        "from paymend.health.outcomes import Outcome\n"
        "b = RedisHealthBook(redis.Redis.from_url(sys.argv[1]), prefix=sys.argv[2])\n"
        "for i in range(5):\n"
        "    b.record(['sim_a'], 5000 + i * 0.1, Outcome.TECHNICAL)\n"
        "print(b.state('sim_a').value)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", other, redis_url, prefix],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.strip().splitlines()[-1] == "open"  # (its log lines come first)
    here = book(redis_url, prefix, open_s=10, probes=1)
    assert here.state("sim_a") is BreakerState.OPEN
    assert not here.allow("sim_a", 5001)
    assert here.allow("sim_a", 5011)  # the cool-down is shared too: one probe, from here
    again = subprocess.run(
        [
            sys.executable,
            "-c",
            "import redis, sys\n"
            "from paymend.health.breaker import BreakerSettings\n"
            "from paymend.health.redis_book import RedisHealthBook\n"
            "s = BreakerSettings(open_s=10, probes=1)  # all processes run one config\n"
            "b = RedisHealthBook(redis.Redis.from_url(sys.argv[1]), s, prefix=sys.argv[2])\n"
            "print(b.allow('sim_a', 5011.5))\n",
            redis_url,
            prefix,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert again.stdout.strip().splitlines()[-1] == "False"  # this process took the probe
    # the worker here audits what the other process did, once
    taken = here.unaudited("worker-1")
    assert [(t.key, t.after) for _, t in taken] == [
        ("sim_a", BreakerState.OPEN),  # the other process
        ("sim_a", BreakerState.HALF_OPEN),  # this one
    ]
    here.audited([i for i, _ in taken])
    assert here.unaudited("worker-2") == []


def test_transitions_a_dead_worker_took_are_audited_by_another(redis_url: str, prefix: str) -> None:
    api = book(redis_url, prefix)
    for i in range(5):
        api.record(["sim_b"], 6000 + i * 0.1, T)
    api.flush()  # its records reach Redis (at its next read, or within FLUSH_AFTER_S)
    first, second = book(redis_url, prefix), book(redis_url, prefix)
    (taken,) = first.unaudited("worker-1")  # ...and it dies before acknowledging
    assert second.unaudited("worker-2") == []  # not stale yet
    second.stale_ms = 0
    assert second.unaudited("worker-2") == [taken]
    second.audited([taken[0]])
    assert second.unaudited("worker-2") == [] and first.unaudited("worker-1") == []


def test_a_payment_routes_around_a_circuit_another_process_opened(
    redis_url: str, prefix: str, sqlite_url: str
) -> None:
    from paymend.engine.clock import LoopClock
    from paymend.engine.virtual_time import run_virtual
    from paymend.store.database import Store
    from tests.engine.test_pay import pay_cmd
    from tests.helpers import make_merchant, service, simulator

    store = Store(sqlite_url, inline=True)
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock = LoopClock()
        a, b = simulator(clock=clock), simulator("sim_b", clock=clock)
        svc = service(store, {"sim_a": a, "sim_b": b}, clock, health=book(redis_url, prefix))
        elsewhere = book(redis_url, prefix)  # another paymend process, same Redis
        now = clock.now().timestamp()
        for i in range(5):
            elsewhere.record(["sim_a"], now + i * 0.01, T)
        elsewhere.flush()  # as it does within FLUSH_AFTER_S, or at its next read
        view = await svc.pay(pay_cmd(mid))
        assert [x.provider for x in view.attempts] == ["sim_b"]
        assert "skipped sim_a (circuit open)" in (view.attempts[0].reason or "")
        assert a.calls == 0

    try:
        run_virtual(scenario())
    finally:
        store.close()


def test_a_failed_probe_doubles_the_wait_in_redis(redis_url: str, prefix: str) -> None:
    b = book(redis_url, prefix, open_s=10, max_open_s=30, probes=1)
    for i in range(5):
        b.record(["sim_a"], 3000 + i * 0.01, T)
    assert b.allow("sim_a", 3010.1)
    b.record(["sim_a"], 3010.2, T)
    assert not b.allow("sim_a", 3029)  # twice as long: 20 s
    assert b.allow("sim_a", 3030.3)
    b.record(["sim_a"], 3030.4, T)
    assert not b.allow("sim_a", 3060)  # capped at 30 s
    assert b.allow("sim_a", 3060.5)


def test_windows_count_outcomes_and_latency_per_key(redis_url: str, prefix: str) -> None:
    b = book(redis_url, prefix)
    keys = ["sim_a", "sim_a|bank=CMB", "*|bank=CMB"]
    for i in range(30):
        b.record(keys, 4000 + i * 0.5, S, 120.0)
    for i in range(10):
        b.record(keys[:1], 4015 + i * 0.1, B, 300.0)
    whole = b.stats("sim_a", 4015.9)
    assert whole is not None
    assert (whole.success, whole.business, whole.technical) == (30, 10, 0)
    recent = b.stats("sim_a|bank=CMB", 4014.9, last_s=5)
    assert recent is not None and recent.success == 10
    p50 = whole.latency_quantile(0.5)
    assert p50 is not None and 100 <= p50 <= 200
    history = b.history("*|bank=CMB", 4016, last_s=60)
    assert history is not None and history.success == 30
    assert b.history("*|bank=CMB", 4016, last_s=60, upto_s=30) is None
    assert set(b.keys()) == set(keys)
    assert b.state("*|bank=CMB") is BreakerState.CLOSED  # cross-channel keys: no breaker


def test_a_playbook_forces_a_breaker_open_for_everyone(redis_url: str, prefix: str) -> None:
    b = book(redis_url, prefix, open_s=10)
    b.force_open("sim_a|region=CN-North", 6000, "playbook regional-errors")
    other = book(redis_url, prefix, open_s=10)
    assert other.state("sim_a|region=CN-North") is BreakerState.OPEN
    assert not other.allow("sim_a|region=CN-North", 6005)
    assert other.allow("sim_a|region=CN-North", 6010.5)


def test_an_in_flight_success_does_not_end_the_run_in_redis(redis_url: str, prefix: str) -> None:
    b = book(redis_url, prefix)
    b.record(["sim_a"], 7000.0, T, 50)
    b.record(["sim_a"], 7000.1, T, 50)
    b.record(["sim_a"], 7000.2, S, 600)  # sent before the run began
    b.record(["sim_a"], 7000.3, T, 50)
    b.record(["sim_a"], 7000.4, T, 50)
    assert b.state("sim_a") is BreakerState.CLOSED
    b.record(["sim_a"], 7000.5, T, 50)
    assert b.state("sim_a") is BreakerState.OPEN


def test_an_ops_flag_is_seen_by_every_process(redis_url: str, prefix: str) -> None:
    book(redis_url, prefix).flag("sim_a", 8000.5, "credentials_expired")
    assert book(redis_url, prefix).flagged("sim_a") == (8000.5, "credentials_expired")
    assert book(redis_url, prefix).flagged("sim_b") is None


def test_ready_asks_redis_without_taking_the_probe(redis_url: str, prefix: str) -> None:
    b = book(redis_url, prefix, open_s=10)
    assert b.ready("sim_a", 9000)
    for i in range(5):
        b.record(["sim_a"], 9000 + i * 0.01, T)
    assert not b.ready("sim_a", 9005)
    assert b.ready("sim_a", 9010.5) and b.ready("sim_a", 9010.5)
    assert b.allow("sim_a", 9010.5)
    assert not b.ready("sim_a", 9010.6)


def test_states_reads_several_breakers_at_once(redis_url: str, prefix: str) -> None:
    b = book(redis_url, prefix)
    for i in range(5):
        b.record(["sim_a|bank=CMB"], 9500 + i * 0.01, T)
    keys = ["sim_a", "sim_a|bank=CMB", "sim_b"]
    assert b.states(keys) == [BreakerState.CLOSED, BreakerState.OPEN, BreakerState.CLOSED]
    assert b.states(keys) == [b.state(k) for k in keys]
    assert b.states([]) == []


def test_a_payment_with_nowhere_else_to_go_probes_early_in_redis(
    redis_url: str, prefix: str
) -> None:
    settings = {"open_s": 10, "max_open_s": 120, "probes": 2, "last_resort_s": 10}
    check_early_probes(book(redis_url, prefix, **settings), 12000.0)
    check_in_flight_success_proves_nothing(book(redis_url, f"{prefix}:b", **settings), 12000.0)


def test_a_timeout_found_charged_counts_as_a_success_in_redis(redis_url: str, prefix: str) -> None:
    check_a_found_charge_counts_as_a_success(book(redis_url, prefix))


def test_a_correction_never_counts_a_call_twice_in_redis(redis_url: str, prefix: str) -> None:
    check_a_correction_never_counts_a_call_twice(book(redis_url, prefix))


def test_records_wait_for_the_next_read_and_this_process_reads_its_own(
    redis_url: str, prefix: str
) -> None:
    """Writes are batched: a record reaches Redis with the next read of its process, in
    the read's round trip (so that process never reads stale), else within FLUSH_AT
    records or FLUSH_AFTER_S seconds, or at `flush()` (every heartbeat)."""
    here, there = book(redis_url, prefix), book(redis_url, prefix)
    for i in range(5):
        here.record(["sim_c"], 7000 + i * 0.01, T)
    assert there.state("sim_c") is BreakerState.CLOSED  # not sent yet
    assert here.state("sim_c") is BreakerState.OPEN  # sent ahead of this read
    assert there.state("sim_c") is BreakerState.OPEN
    assert [t.after for t in here.transitions] == [BreakerState.OPEN]
    for i in range(FLUSH_AT):
        here.record(["sim_d"], 7100 + i * 0.001, S)
    assert there.stats("sim_d", 7101) is not None  # a full queue went on its own
    here.record(["sim_e"], 7200, S)
    here.record(["sim_e"], 7200 + FLUSH_AFTER_S, S)  # the first has waited long enough
    assert there.stats("sim_e", 7201) is not None
