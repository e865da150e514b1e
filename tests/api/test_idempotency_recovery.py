"""An Idempotency-Key whose request died is never stuck: the next request with it gets
what the dead request created, as it is now, or runs if nothing was created.

A dead request is made as a crash leaves it: the key claimed by an instance whose
process has exited, the engine's work done under that claim (linking what it created),
and no answer stored. The process is real (a child that exits or is killed); the
server finds it dead by its pid on this machine.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from paymend.api.payments import idempotency_body
from paymend.api.schemas import PaymentIn
from paymend.domain.errors import Conflict
from paymend.domain.ids import MerchantId
from paymend.domain.money import Money
from paymend.domain.payment import Customer
from paymend.engine.commands import PayCommand, RefundCommand
from paymend.engine.liveness import process_started, this_host
from paymend.store import idempotency, instances
from paymend.store.idempotency import Claim
from paymend.store.instances import Instance
from tests.api.conftest import Server
from tests.api.test_payments_api import BODY
from tests.helpers import count_rows

pytestmark = pytest.mark.skipif(
    this_host().boot_id is None, reason="needs Linux /proc to tell pids on this host"
)


@pytest.fixture
def owner(server: Server) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Another paymend process on this machine, as an instance with a real pid; kill
    it to make it die."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    host, now = this_host(), server.runtime.clock.now()
    row = Instance(
        "ins_other",
        "serve",
        host.hostname,
        host.boot_id,
        host.pid_namespace,
        proc.pid,
        process_started(proc.pid),
        now,
        now,
    )
    server.runtime.store.run_sync(lambda c: instances.register(c, row))
    yield row.id, proc
    proc.kill()
    proc.wait(timeout=30)


def die(proc: subprocess.Popen[bytes]) -> None:
    proc.kill()
    proc.wait(timeout=30)


def claimed(
    server: Server, key: str, path: str, body: dict[str, Any], owner: str, age_s: float = 0
) -> Claim:
    digest = idempotency.request_hash(path, body)
    now = server.runtime.clock.now() - timedelta(seconds=age_s)
    claim = server.runtime.store.run_sync(
        lambda c: idempotency.claim(
            c, MerchantId(server.merchant_id), key, path, digest, now, owner=owner
        )
    )
    assert isinstance(claim, Claim)
    return claim


def pay_body() -> dict[str, Any]:
    return idempotency_body(PaymentIn.model_validate(BODY))


def pay_cmd(server: Server, claim: Claim, order: str = BODY["order_id"]) -> PayCommand:
    return PayCommand(
        merchant_id=MerchantId(server.merchant_id),
        order_id=order,
        amount=Money(BODY["amount"], "CNY"),
        method="card",
        bank="ICBC",
        region="CN-East",
        token=BODY["payment_token"],
        customer=Customer("c-42", "zh-CN"),
        claim=claim,
    )


def test_the_payment_of_a_dead_request_is_the_answer_once_its_process_is_gone(
    server: Server, api: httpx.Client, owner: tuple[str, subprocess.Popen[bytes]]
) -> None:
    instance, proc = owner
    claim = claimed(server, "k-died", "/v1/payments", pay_body(), instance)
    view = asyncio.run(server.runtime.service.pay(pay_cmd(server, claim)))  # then it died
    busy = api.post("/v1/payments", json=BODY, headers={"Idempotency-Key": "k-died"})
    assert busy.status_code == 409  # its process still runs: it may still answer
    assert busy.json()["error"]["code"] == "idempotency_request_in_progress"
    die(proc)
    before = count_rows(server.runtime.store)
    retry = api.post("/v1/payments", json=BODY, headers={"Idempotency-Key": "k-died"})
    assert retry.status_code == 201, retry.text
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json() == api.get(f"/v1/payments/{view.payment.id}").json()
    assert retry.json()["status"] == "succeeded"
    again = api.post("/v1/payments", json=BODY, headers={"Idempotency-Key": "k-died"})
    assert again.json() == retry.json()
    after = count_rows(server.runtime.store)
    assert (after["payments"], after["attempts"]) == (before["payments"], before["attempts"])
    assert server.runtime.simulators["sim_a"].calls == 1  # nobody paid again


def test_a_dead_request_that_created_nothing_frees_its_key(
    server: Server, api: httpx.Client, owner: tuple[str, subprocess.Popen[bytes]]
) -> None:
    instance, proc = owner
    claimed(server, "k-empty", "/v1/payments", pay_body(), instance)
    die(proc)
    retry = api.post("/v1/payments", json=BODY, headers={"Idempotency-Key": "k-empty"})
    assert retry.status_code == 201 and "Idempotent-Replayed" not in retry.headers
    assert count_rows(server.runtime.store)["payments"] == 1
    replay = api.post("/v1/payments", json=BODY, headers={"Idempotency-Key": "k-empty"})
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == retry.json()


def test_a_request_hung_past_the_cap_in_a_live_process_is_recovered(
    server: Server, api: httpx.Client
) -> None:
    alive = server.runtime.presence.id
    assert alive is not None
    cap = server.runtime.config.idempotency.claim_expires_after
    old = claimed(server, "k-hung", "/v1/payments", pay_body(), alive, age_s=cap + 1)
    retry = api.post("/v1/payments", json=BODY, headers={"Idempotency-Key": "k-hung"})
    assert retry.status_code == 201 and "Idempotent-Replayed" not in retry.headers
    # the hung request wakes up: its claim is no longer its own, it creates nothing (even
    # where nothing else would stop it: another order)
    before = count_rows(server.runtime.store)
    with pytest.raises(Conflict) as info:
        asyncio.run(server.runtime.service.pay(pay_cmd(server, old, order="order-other")))
    assert info.value.code == "idempotency_request_in_progress"
    assert count_rows(server.runtime.store) == before
    fresh = claimed(server, "k-young", "/v1/payments", pay_body(), alive, age_s=cap - 5)
    assert fresh.token
    young = api.post("/v1/payments", json=BODY, headers={"Idempotency-Key": "k-young"})
    assert young.json()["error"]["code"] == "idempotency_request_in_progress"


def test_a_refund_whose_request_died_is_answered_never_sent_twice(
    server: Server, api: httpx.Client, owner: tuple[str, subprocess.Popen[bytes]]
) -> None:
    instance, proc = owner
    paid = api.post("/v1/payments", json=BODY).json()
    path, body = f"/v1/payments/{paid['id']}/refunds", {"amount": 500, "reason": None}
    claim = claimed(server, "r-died", path, body, instance)
    command = RefundCommand(MerchantId(server.merchant_id), paid["id"], amount=500, claim=claim)
    refund = asyncio.run(server.runtime.service.refund(command))
    die(proc)
    retry = api.post(path, json={"amount": 500}, headers={"Idempotency-Key": "r-died"})
    assert retry.status_code == 201, retry.text
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert (retry.json()["id"], retry.json()["status"]) == (refund.id, "succeeded")
    ledger = server.runtime.simulators["sim_a"].ledger
    assert ledger.net_charged(paid["id"]) == BODY["amount"] - 500  # refunded once
    assert api.get(f"/v1/payments/{paid['id']}").json()["amount_refunded"] == 500


def test_a_cancel_whose_request_died_answers_with_the_canceled_payment(
    server: Server, api: httpx.Client, owner: tuple[str, subprocess.Popen[bytes]]
) -> None:
    instance, proc = owner
    waiting = api.post("/v1/payments", json={**BODY, "payment_token": "sim_3ds"}).json()
    path = f"/v1/payments/{waiting['id']}/cancel"
    claim = claimed(server, "x-died", path, {}, instance)
    asyncio.run(server.runtime.service.cancel(MerchantId(server.merchant_id), waiting["id"], claim))
    die(proc)
    retry = api.post(path, headers={"Idempotency-Key": "x-died"})
    assert retry.status_code == 200, retry.text  # not 409 payment_not_cancelable
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json()["status"] == "canceled"
