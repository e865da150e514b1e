"""Customer notices end to end: real engine, real outbox relay, real database, and the
Aliyun SDK talking to a local HTTP endpoint that answers as Aliyun documents.

Time is the virtual loop's: the hold delay and the retry schedule pass in moments.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from paymend.domain.events import EventType
from paymend.domain.ids import MerchantId
from paymend.domain.payment import PaymentStatus
from paymend.domain.status_links import verify
from paymend.engine.clock import LoopClock
from paymend.engine.customer_notices import CustomerNotices
from paymend.engine.ids import IdFactory
from paymend.engine.job_registry import paymend_jobs
from paymend.engine.payments import PaymentService
from paymend.engine.runtime import build_payment_service
from paymend.engine.settings import EngineSettings
from paymend.engine.virtual_time import run_virtual
from paymend.engine.webhooks import WebhookSender
from paymend.engine.worker import Worker
from paymend.notify.aliyun_sms import AliyunSmsChannel, AliyunSmsSettings
from paymend.notify.email_channel import EmailChannel
from paymend.notify.policy import ChannelName, NoticeKind, Policy, QuietHours, load_policy
from paymend.notify.templates import Templates
from paymend.store import jobs, notices, outbox
from paymend.store.database import Store
from paymend.store.pii import DataKey, Vault
from paymend.store.tables import jobs as job_rows
from paymend.store.tables import notice_intents
from tests.engine.test_pay import pay_cmd
from tests.helpers import make_merchant, simulator
from tests.notify.aliyun_server import ILLEGAL, AliyunSms, serving
from tests.notify.test_email_channel import Inbox
from tests.notify.test_email_channel import smtp as smtp  # the SMTP server fixture

HOLD_S = 120.0
LINK_KEY = b"notices-link-key"
DEADLINE_S = 3.0


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url, inline=True)
    yield s
    s.close()


@pytest.fixture
def sms() -> Iterator[tuple[AliyunSms, str]]:
    gateway = AliyunSms()
    with serving(gateway) as endpoint:
        yield gateway, endpoint


@dataclass
class Setup:
    svc: PaymentService
    notices: CustomerNotices
    clock: LoopClock

    def worker(self) -> Worker:
        webhooks = WebhookSender(
            self.svc.store, self.clock, self.svc.ids, consumers=[self.notices.plan]
        )
        return Worker(
            self.svc, webhooks=webhooks, registry=paymend_jobs(self.svc, webhooks, self.notices)
        )


def setup(store: Store, endpoint: str, policy: Policy | None = None) -> Setup:
    clock = LoopClock()
    sim = simulator(clock=clock, hang_s=60, latency_p50_ms=3000, latency_p99_ms=3000)
    ids = IdFactory(seed=1)
    settings = EngineSettings(
        provider_timeout_s=5, checkout_deadline_s=DEADLINE_S, routing=("sim_a",), seed=1
    )
    vault = Vault(DataKey.generate())
    svc = build_payment_service(store, {"sim_a": sim}, clock, settings, ids, pii=vault)
    sms_channel = AliyunSmsChannel(AliyunSmsSettings("ak", "sk", "paymend", endpoint, "http"))
    policy = policy or load_policy().model_copy(
        update={"quiet_hours": None, "failure_hold": HOLD_S, "channels": [ChannelName.SMS]}
    )
    notices_ = CustomerNotices(
        store,
        clock,
        ids,
        vault=vault,
        messages=svc.classifier.messages,
        policy=policy,
        templates=Templates(),
        channels={ChannelName.SMS: sms_channel},
        checkout_deadline_s=DEADLINE_S,
        link_key=LINK_KEY,
        public_url="https://pay.shop.cn",
    )
    return Setup(svc, notices_, clock)


def opens(link: str, now: datetime) -> tuple[str | None, str]:
    """The payment a notice's link opens (signed, paymend's own page) and its language."""
    assert link.startswith("https://pay.shop.cn/pay/"), link
    token, _, query = link.removeprefix("https://pay.shop.cn/pay/").partition("?lang=")
    return verify(LINK_KEY, token, now).payment_id, query


async def late_failure(s: Setup, worker: Worker, mid: MerchantId, order: str = "o-1") -> str:
    """A payment the checkout gave up on (processing), failed later by the worker."""
    view = await s.svc.pay(pay_cmd(mid, "sim_timeout", order=order))
    assert view.payment.status is PaymentStatus.PROCESSING
    await s.clock.sleep(2)
    await worker.sweep()  # the status query: not charged -> failed
    assert (await s.svc.get(view.payment.id)).payment.status is PaymentStatus.FAILED
    return str(view.payment.id)


def intents(store: Store) -> list[dict[str, Any]]:
    def read(conn: sa.Connection) -> list[dict[str, Any]]:
        rows = conn.execute(sa.select(notice_intents).order_by(notice_intents.c.created_at))
        return [dict(r._mapping) for r in rows]

    return store.run_sync(read)


def test_a_late_failure_sends_one_sms_after_the_hold_with_next_step_and_link(
    store: Store, sms: tuple[AliyunSms, str]
) -> None:
    gateway, endpoint = sms
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        s = setup(store, endpoint)
        worker = s.worker()
        pid = await late_failure(s, worker, mid)
        await s.clock.sleep(0.5)  # the next sweep comes a moment later
        await worker.sweep()  # the relay: the failure event becomes an intent, held
        failed_at = next(
            e.created_at
            for e in store.run_sync(lambda c: outbox.for_subject(c, pid))
            if e.type == "payment.failed"
        )
        # held from the failure itself, not from the sweep that relayed it
        (due,) = store.run_sync(
            lambda c: c.execute(
                sa.select(job_rows.c.run_at).where(job_rows.c.kind == "send_notice")
            ).all()
        )
        assert due.run_at == failed_at + timedelta(seconds=HOLD_S)
        while s.clock.now() < failed_at + timedelta(seconds=HOLD_S - 1):
            await s.clock.sleep(1)
            await worker.sweep()
        assert gateway.delivered == []  # nothing during the hold
        for _ in range(3):
            await s.clock.sleep(1)
            await worker.sweep()
        (got,) = gateway.delivered
        assert got["PhoneNumbers"] == "+8613812345678"
        assert got["TemplateCode"] == "SMS_PAYMEND_FAILED"
        params = got["params"]
        assert opens(params["link"], s.clock.now()) == (pid, "zh-CN")
        # the catalogue's next step for a timeout that did not charge, in Chinese
        steps = s.svc.classifier.messages.render("provider_timeout", "zh-CN", support_contact=None)
        assert params["step"] == steps.suggestions[0][:35] and params["amount"] == "¥50.00"
        (intent,) = intents(store)
        assert intent["status"] == "sent" and intent["channel"] == "sms"
        assert intent["kind"] == NoticeKind.PAYMENT_FAILED
        delay = (intent["sent_at"] - failed_at).total_seconds() - HOLD_S
        assert 0 <= delay <= 2.0
        (attempt,) = store.run_sync(lambda c: notices.attempts(c, intent["id"]))
        assert attempt["delivered"] and attempt["recipient"] == "+86****5678"
        for _ in range(5):  # nothing more, ever
            await s.clock.sleep(600)
            await worker.sweep()
        assert len(gateway.received) == 1

    run_virtual(scenario())


def test_a_failure_then_a_paid_order_inside_the_hold_sends_only_the_success(
    store: Store, sms: tuple[AliyunSms, str]
) -> None:
    gateway, endpoint = sms
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        s = setup(store, endpoint)
        worker = s.worker()
        first = await late_failure(s, worker, mid)
        await worker.sweep()  # the failure notice is planned, held
        second = await s.svc.pay(pay_cmd(mid, "sim_approve", order="o-1"))  # another card
        for _ in range(int(HOLD_S // 10) + 3):
            await s.clock.sleep(10)
            await worker.sweep()
        assert (await s.svc.get(second.payment.id)).payment.status is PaymentStatus.SUCCEEDED
        (got,) = gateway.delivered
        assert got["TemplateCode"] == "SMS_PAYMEND_SUCCEEDED"
        by_kind = {(i["payment_id"], i["kind"]): i for i in intents(store)}
        assert by_kind[(first, "payment_failed")]["status"] == "dropped"
        assert by_kind[(str(second.payment.id), "payment_succeeded")]["status"] == "sent"

    run_virtual(scenario())


def test_two_workers_and_a_replayed_relay_never_send_twice(
    store: Store, sms: tuple[AliyunSms, str]
) -> None:
    gateway, endpoint = sms
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        s = setup(store, endpoint)
        one, two = s.worker(), s.worker()
        pids = [await late_failure(s, one, mid, order=f"o-{i}") for i in range(3)]
        await asyncio.gather(one.sweep(), two.sweep())
        # a relay replayed after a crash: the same events planned again
        events = store.run_sync(lambda c: [e for p in pids for e in outbox.for_subject(c, p)])
        store.run_sync(lambda c: s.notices.plan(c, events, s.clock.now()))
        assert len(intents(store)) == 3
        for _ in range(int(HOLD_S // 10) + 3):
            await s.clock.sleep(10)
            await asyncio.gather(one.sweep(), two.sweep())
        told = sorted(opens(d["params"]["link"], s.clock.now())[0] or "" for d in gateway.delivered)
        assert told == sorted(pids)

    run_virtual(scenario())


def test_an_invalid_number_falls_back_and_then_tells_the_merchant(
    store: Store, sms: tuple[AliyunSms, str]
) -> None:
    gateway, endpoint = sms
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        s = setup(store, endpoint)
        s.notices.policy = s.notices.policy.model_copy(
            update={"channels": [ChannelName.SMS, ChannelName.WECHAT, ChannelName.EMAIL]}
        )
        worker = s.worker()
        cmd = pay_cmd(mid, "sim_timeout")
        assert cmd.customer is not None
        cmd = replace(cmd, customer=replace(cmd.customer, phone=ILLEGAL, email=None))
        view = await s.svc.pay(cmd)
        await s.clock.sleep(2)
        await worker.sweep()
        for _ in range(int(HOLD_S // 10) + 3):
            await s.clock.sleep(10)
            await worker.sweep()
        (intent,) = intents(store)
        assert intent["status"] == "failed"
        assert "isv.MOBILE_NUMBER_ILLEGAL" in intent["reason"]
        assert "wechat: skipped, not configured" in intent["reason"]
        assert "email: skipped" in intent["reason"]
        assert len(gateway.received) == 1  # final: not retried
        told = [
            e.type for e in store.run_sync(lambda c: outbox.for_subject(c, str(view.payment.id)))
        ]
        assert "notification.failed" in told

    run_virtual(scenario())


def test_quiet_hours_and_the_hourly_limit_postpone_never_drop(
    store: Store, sms: tuple[AliyunSms, str]
) -> None:
    gateway, endpoint = sms
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        # the virtual day starts at 08:00 in Shanghai: quiet until 09:00
        quiet = QuietHours.model_validate({"start": "00:00", "end": "09:00"})
        policy = load_policy().model_copy(
            update={
                "quiet_hours": quiet,
                "failure_hold": HOLD_S,
                "channels": [ChannelName.SMS],
                "max_per_customer_per_hour": 1,
            }
        )
        s = setup(store, endpoint, policy)
        worker = s.worker()
        await late_failure(s, worker, mid, order="o-1")
        await late_failure(s, worker, mid, order="o-2")  # the same customer, c1
        for _ in range(int(HOLD_S // 10) + 3):
            await s.clock.sleep(10)
            await worker.sweep()
        assert gateway.received == []  # held, then quiet
        while s.clock.now() < datetime(2026, 1, 1, 1, 0, 30, tzinfo=UTC):  # 09:00:30 there
            await s.clock.sleep(30)
            await worker.sweep()
        assert len(gateway.delivered) == 1  # one per hour for this customer
        for _ in range(7):
            await s.clock.sleep(600)
            await worker.sweep()
        assert len(gateway.delivered) == 2
        assert {i["status"] for i in intents(store)} == {"sent"}

    run_virtual(scenario())


def test_a_worker_that_dies_holding_notice_jobs_leaves_them_to_the_next_once(
    store: Store, sms: tuple[AliyunSms, str]
) -> None:
    """A worker claims a burst of due notices and dies before sending: its instance is
    not alive (engine/liveness.py), so the next worker takes the jobs over at once and
    sends each exactly once; sweeping again sends nothing more."""
    gateway, endpoint = sms
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        policy = load_policy().model_copy(
            update={
                "quiet_hours": None,
                "failure_hold": HOLD_S,
                "channels": [ChannelName.SMS],
                "max_per_customer_per_hour": 100,
            }
        )
        s = setup(store, endpoint, policy)
        worker = s.worker()
        pids = [await late_failure(s, worker, mid, order=f"o-{i}") for i in range(4)]
        await worker.sweep()  # planned, held
        await s.clock.sleep(HOLD_S + 1)
        lease = timedelta(seconds=worker.settings.lease_s)
        claimed = store.run_sync(
            lambda c: jobs.claim(c, s.clock.now(), lease, 100, owner="ins_dead")
        )
        assert {j.kind for j in claimed} == {jobs.JobKind.SEND_NOTICE} and len(claimed) == 4
        restarted = s.worker()
        await restarted.sweep()
        for _ in range(3):
            await s.clock.sleep(worker.settings.lease_s + 1)  # any lease long gone
            await restarted.sweep()
        links = sorted(
            opens(d["params"]["link"], s.clock.now())[0] or "" for d in gateway.delivered
        )
        assert links == sorted(pids)
        assert {i["status"] for i in intents(store)} == {"sent"}

    run_virtual(scenario())


def test_an_event_that_cannot_be_planned_does_not_stop_the_relay(
    store: Store, sms: tuple[AliyunSms, str]
) -> None:
    _, endpoint = sms
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        s = setup(store, endpoint)
        store.run_sync(
            lambda c: outbox.add(
                c,
                "evt_odd",
                mid,
                EventType.PAYMENT_FAILED,
                "pay_gone",
                {"payment_id": "pay_gone", "order_id": "o-x"},
                s.clock.now(),
            )
        )
        await s.worker().sweep()
        assert store.run_sync(lambda c: outbox.unpublished(c)) == []
        assert intents(store) == []

    run_virtual(scenario())


@pytest.mark.parametrize("code", ["suspected_fraud", "lost_or_stolen_card"])
def test_a_fraud_or_lost_card_reason_never_reaches_the_customer(
    store: Store, sms: tuple[AliyunSms, str], code: str
) -> None:
    _, endpoint = sms

    async def scenario() -> None:
        s = setup(store, endpoint)
        facts = {"amount": 5000, "currency": "CNY", "failure_code": code}
        for locale in ("zh-CN", "en"):
            intent = notices.Intent(
                "ntc_1", "pay_1:payment_failed", "mer_1", "pay_1", "o-1", "payment_failed",
                "evt_1", None, "pending", 0, 0, None, None,
                facts | {"customer": {"locale": locale}}, s.clock.now(), None,
            )  # fmt: skip
            text = s.notices._render(intent, NoticeKind.PAYMENT_FAILED, "support", s.clock.now())
            plain = s.svc.classifier.messages.render(
                "generic_decline", locale, support_contact=None
            )
            assert text.params["step"] == plain.suggestions[0][:35]
            assert plain.title in text.sms and plain.title in text.html
            for part in (text.sms, text.subject, text.text, text.html):
                assert "fraud" not in part.lower() and "欺诈" not in part and "stolen" not in part
                assert "挂失" not in part

    run_virtual(scenario())


def test_an_invalid_number_falls_back_to_email_on_a_real_smtp_server(
    store: Store, sms: tuple[AliyunSms, str], smtp: tuple[Inbox, int]
) -> None:
    gateway, endpoint = sms
    inbox, port = smtp
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        s = setup(store, endpoint)
        s.notices.policy = s.notices.policy.model_copy(
            update={"channels": [ChannelName.SMS, ChannelName.EMAIL]}
        )
        s.notices.channels[ChannelName.EMAIL] = EmailChannel(
            f"mailto://shop@127.0.0.1:{port}?mode=insecure&from=shop@example.com"
        )
        worker = s.worker()
        cmd = pay_cmd(mid, "sim_timeout")
        assert cmd.customer is not None
        cmd = replace(cmd, customer=replace(cmd.customer, phone=ILLEGAL))
        view = await s.svc.pay(cmd)
        await s.clock.sleep(2)
        await worker.sweep()
        for _ in range(int(HOLD_S // 10) + 3):
            await s.clock.sleep(10)
            await worker.sweep()
        assert gateway.delivered == [] and len(gateway.received) == 1
        ((envelope, mail),) = inbox.mails
        assert envelope.rcpt_tos == ["li@example.com"]
        html = mail.get_body(("html",))
        assert html is not None
        (link,) = re.findall(r'href="(https://pay\.shop\.cn/pay/[^"]+)"', html.get_content())
        assert opens(link, s.clock.now()) == (view.payment.id, "zh-CN")
        (intent,) = intents(store)
        assert intent["status"] == "sent" and intent["channel"] == "email"
        assert "sms: isv.MOBILE_NUMBER_ILLEGAL" in intent["reason"]

    run_virtual(scenario())
