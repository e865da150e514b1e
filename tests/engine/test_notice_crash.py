"""SIGKILL a real `paymend worker` in the middle of a burst of customer SMS, start another,
and prove every notice goes out, none is lost and none is repeated outside the one
window no SMS provider lets us close (issue 14).

Why not "exactly once" at the provider: Aliyun's `SendSms` is not idempotent. Its
reference says so ("This API does not support idempotence ... You must implement your own
idempotence controls to prevent sending duplicate messages during retries",
https://help.aliyun.com/en/sms/developer-reference/api-dysmsapi-2017-05-25-sendsms), and
`OutId` there is only an external serial number echoed in delivery receipts, not a key
Aliyun refuses a repeat on. So a worker killed after Aliyun accepted a message and before
the commit that marks its intent `sent` leaves nothing that says it went out: the intent
is still `pending`, its job is taken over, and the message is sent again. What paymend
promises is one intent per (payment, kind), ever (`notice_intents.dedupe_key` is unique),
an intent committed `sent` is never sent again, and every try carries the intent's key
`<payment>:<kind>` as `OutId` (notify/aliyun_sms.py), so a repeat can be matched to its
first send in the receipts. The repeats are therefore bounded by the sends in flight at
the kill: at most the jobs a worker runs at once, its `telling` slots and its general
ones (engine/worker.py).

The scenario: payments whose checkout gave up (`processing`) are made in this process on
the shared database (SQLite file or PostgreSQL); the worker process asks the provider
about them, fails them, relays the failures, and after a 1 s hold sends one SMS each
through the Aliyun SDK to a local endpoint that answers as Aliyun documents, a moment
after accepting each message. The endpoint kills the worker when it has accepted
KILL_AT messages; a second worker finishes the burst.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from starlette.requests import Request
from starlette.responses import JSONResponse

from paymend.domain.ids import MerchantId
from paymend.domain.money import Money
from paymend.domain.payment import Customer, PaymentStatus
from paymend.engine.clock import LoopClock
from paymend.engine.commands import PayCommand
from paymend.engine.ids import IdFactory
from paymend.engine.runtime import build_payment_service
from paymend.engine.settings import EngineSettings
from paymend.engine.virtual_time import run_virtual
from paymend.engine.worker import WorkerSettings
from paymend.notify.policy import DEFAULT_POLICY
from paymend.store.database import Store
from paymend.store.jobs import JobKind
from paymend.store.pii import DataKey, Vault
from paymend.store.tables import jobs, notice_intents
from tests.helpers import make_merchant, simulator
from tests.notify.aliyun_server import AliyunSms, serving
from tests.serve_process import Paymend, rows, write_config
from tests.serve_process import until as poll

BURST = 24  # payments, one failure notice each
KILL_AT = 12  # the worker dies when the endpoint has accepted this many messages
ANSWER_AFTER_S = 0.15  # the endpoint's latency: accepted at once, answered this later
CONCURRENCY = 2  # the worker's general slots (paymend.yaml `worker.concurrency`)
# what a worker sends at once: its `telling` slots, and the general ones, which take any
# due job, notices too (engine/worker.py)
SLOTS = CONCURRENCY + WorkerSettings().telling
WAIT_S = 30.0  # bound on the processes reaching a state
KIND = "payment_failed"


class SlowAliyun(AliyunSms):
    """Takes each message (recorded as delivered) and answers ANSWER_AFTER_S later; calls
    `kill` once, right after accepting message `kill_at`: the worker dies holding that
    message and the others it has in flight, accepted here and not yet recorded."""

    def __init__(self, kill_at: int) -> None:
        super().__init__()
        self.kill_at = kill_at
        self.kill: Callable[[], None] | None = None

    async def endpoint(self, request: Request) -> JSONResponse:
        response = await super().endpoint(request)
        if len(self.delivered) == self.kill_at and self.kill is not None:
            kill, self.kill = self.kill, None
            kill()
        await asyncio.sleep(ANSWER_AFTER_S)  # the provider's latency, after it accepted
        return response


@pytest.fixture
def sms() -> Iterator[tuple[SlowAliyun, str]]:
    gateway = SlowAliyun(KILL_AT)
    with serving(gateway) as endpoint:
        yield gateway, endpoint


def config(tmp_path: Path, endpoint: str) -> Path:
    policy = yaml.safe_load(DEFAULT_POLICY.read_text())
    policy |= {
        "channels": ["sms"],
        "failure_hold": "1s",
        "quiet_hours": None,  # failure notices go out at any hour here
        "max_per_customer_per_hour": 100,
    }
    write_config(tmp_path / "notifications.yaml", policy)
    return write_config(
        tmp_path / "paymend.yaml",
        {
            "seed": 14,
            "providers": {
                "sim_a": {
                    "type": "simulator",
                    "methods": ["card"],
                    "latency_ms": {"p50": 5, "p99": 10},
                }
            },
            "routing": ["sim_a"],
            "worker": {"interval": "200ms", "concurrency": CONCURRENCY},
            "instances": {"heartbeat": "500ms", "dead_after": "3s"},
            "notifications": {
                "policy": "notifications.yaml",
                "aliyun_sms": {"endpoint": endpoint, "protocol": "http"},
            },
            "customers": {"public_url": "https://pay.shop.cn"},
        },
    )


def phone(i: int) -> str:
    return f"+86138{i:08d}"


def processing_burst(db_url: str, data_key: DataKey) -> dict[str, str]:
    """BURST payments the checkout gave up on, their outcome unknown and a status query
    owed (a settle job): payment id -> the customer's phone. Made on a virtual clock
    ten minutes in the past: the worker's query is due at once, and what it finds (no
    charge) fails the payment for good, past the time retries end (`settle_within`,
    5 min) and long past the checkout's deadline, so a failure notice is owed."""
    store = Store(db_url, inline=True)
    try:
        mid, _ = make_merchant(store)

        async def scenario() -> dict[str, str]:
            clock = LoopClock(datetime.now(UTC) - timedelta(minutes=10))
            sim = simulator(clock=clock, hang_s=60)
            settings = EngineSettings(provider_timeout_s=5, checkout_deadline_s=3, seed=14)
            svc = build_payment_service(
                store, {"sim_a": sim}, clock, settings, IdFactory(seed=14), pii=Vault(data_key)
            )
            views = await asyncio.gather(*(svc.pay(command(mid, i)) for i in range(BURST)))
            assert {v.payment.status for v in views} == {PaymentStatus.PROCESSING}
            await clock.sleep(3)  # each call times out: outcome unknown, a query owed
            return {str(v.payment.id): phone(i) for i, v in enumerate(views)}

        made = run_virtual(scenario())
    finally:
        store.close()
    owed = rows(db_url, sa.select(jobs.c.subject_id).where(jobs.c.kind == JobKind.SETTLE_ATTEMPT))
    assert len(owed) == BURST
    return made


def command(mid: MerchantId, i: int) -> PayCommand:
    return PayCommand(
        merchant_id=mid,
        order_id=f"o-{i}",
        amount=Money(5000 + i, "CNY"),
        method="card",
        token="sim_timeout",
        customer=Customer(f"c-{i}", "zh-CN", phone(i)),
    )


def until(what: str, check: Callable[[], Any]) -> Any:
    return poll(what, check, WAIT_S)


def test_a_worker_killed_mid_burst_leaves_every_notice_sent_repeating_only_those_in_flight(
    db_url: str, tmp_path: Path, sms: tuple[SlowAliyun, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway, endpoint = sms
    data_key = DataKey.generate()
    for name, value in {
        "PAYMEND_DATA_KEY": data_key.encoded(),
        "PAYMEND_LINK_KEY": "notice-crash-link-key-of-32-characters",
        "PAYMEND_ALIYUN_SMS_ACCESS_KEY_ID": "ak",
        "PAYMEND_ALIYUN_SMS_ACCESS_KEY_SECRET": "sk",
    }.items():
        monkeypatch.setenv(name, value)  # the worker processes inherit them
    phones = processing_burst(db_url, data_key)
    path = config(tmp_path, endpoint)
    log = tmp_path / "worker.log"
    intent_rows = sa.select(notice_intents.c.dedupe_key, notice_intents.c.status)
    notice_jobs = sa.select(jobs.c.id).where(jobs.c.kind == JobKind.SEND_NOTICE)

    first = Paymend("worker", db_url, path, log)
    try:
        gateway.kill = lambda: first.proc.send_signal(signal.SIGKILL)
        until("the worker killed mid-burst", lambda: first.proc.poll() is not None)
        assert first.proc.returncode == -signal.SIGKILL, f"see {log}"
    finally:
        first.close()
    before = [d["OutId"] for d in gateway.delivered]  # the dead worker's, all of them
    committed = {r.dedupe_key for r in rows(db_url, intent_rows) if r.status == "sent"}
    in_flight = set(before) - committed  # with Aliyun, not recorded: sent again
    assert committed <= set(before)
    assert 1 <= len(in_flight) <= SLOTS, (len(before), len(committed))

    second = Paymend("worker", db_url, path, log)
    try:
        restarted = second.started

        def all_sent() -> bool:
            """Every intent sent and every send_notice job done: nothing left that
            could send again."""
            got = rows(db_url, intent_rows)
            left = rows(db_url, notice_jobs.where(jobs.c.status != "done"))
            return len(got) == BURST and all(r.status == "sent" for r in got) and not left

        until("every notice sent after the restart", all_sent)
        finished_s = time.monotonic() - restarted
        assert second.proc.poll() is None, f"the second worker died: see {log}"
    finally:
        second.close()

    intents = rows(db_url, sa.select(notice_intents))
    assert sorted((r.payment_id, r.kind) for r in intents) == sorted(
        (p, KIND) for p in phones
    )  # one intent per (payment, kind), for every payment, and nothing else
    told = Counter(d["OutId"] for d in gateway.delivered)
    assert set(told) == {f"{p}:{KIND}" for p in phones}  # every customer told
    repeated = {key for key, n in told.items() if n > 1}
    assert repeated <= in_flight, repeated - in_flight  # none committed is ever sent again
    assert all(told[key] == 2 for key in repeated)
    for d in gateway.delivered:  # each to its own customer, under its own key
        assert d["PhoneNumbers"] == phones[d["OutId"].removesuffix(f":{KIND}")]
        assert d["TemplateCode"] == "SMS_PAYMEND_FAILED"
    print(
        f"\n{db_url.split(':')[0]}: {BURST} notices; the worker was killed with "
        f"{len(before)} accepted by the provider, {len(committed)} of them recorded sent, "
        f"{len(in_flight)} in flight; after the restart all sent in {finished_s:.1f}s, "
        f"{len(repeated)} sent twice (all in flight at the kill), "
        f"{len(gateway.delivered)} SMS in all"
    )
