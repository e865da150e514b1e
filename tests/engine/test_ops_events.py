"""Failures that open no incident page ops too: a playbook that only alerts, a job given
up, a webhook endpoint given up on, a second charge refunded, an amount a provider
disagrees on. Real database, worker and job queue, pages to a real JSON endpoint on
127.0.0.1; the virtual loop's clock."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from paymend.domain.ids import MerchantId
from paymend.engine.clock import LoopClock
from paymend.engine.ids import IdFactory
from paymend.engine.job_registry import paymend_jobs
from paymend.engine.ops_alerts import ALERT_KEY_HEADER, OpsAlerts
from paymend.engine.ops_events import OpsEventKind, raise_event
from paymend.engine.playbooks import PlaybookRunner
from paymend.engine.silences import SilenceService
from paymend.engine.virtual_time import run_virtual
from paymend.engine.webhooks import WebhookSender
from paymend.engine.worker import Worker
from paymend.health.keys import channel_key
from paymend.playbooks.model import load_playbooks
from paymend.store import jobs, merchants
from paymend.store import ops_alerts as alerts_repo
from paymend.store import ops_events as repo
from paymend.store.database import Store
from paymend.store.tables import audit_log
from tests.engine.test_ops_alerts import ROUTES, TOKEN, Hooks, routes
from tests.engine.test_ops_alerts import hooks as hooks  # the JSON endpoint fixture
from tests.engine.test_ops_alerts import store as store  # the database fixture
from tests.engine.test_pay import pay_cmd
from tests.helpers import NOW, service, simulator
from tests.local_server import free_port

ONCALL = f"/oncall/{TOKEN}"
ALERT_ONLY = """\
playbooks:
  - name: channel-flaky
    description: A channel's circuit opened
    severity: major
    when: {signal: circuit_open, scope: channel}
    do: [alert]
    recover: {after: 30s}
"""


def events(store: Store, kind: OpsEventKind) -> list[repo.OpsEvent]:
    return store.run_sync(lambda c: repo.of_kind(c, kind.value))


def pages(store: Store, event_id: str) -> list[tuple[str, str]]:
    alerts = store.run_sync(lambda c: alerts_repo.alerts_of(c, event_id))
    return sorted((a.route, a.status) for a in alerts)


def audited(store: Store, action: str) -> list[str]:
    rows = store.run_sync(
        lambda c: c.execute(sa.select(audit_log.c.target).where(audit_log.c.action == action))
    )
    return [r.target for r in rows]


def test_a_job_given_up_a_webhook_given_up_and_a_duplicate_charge_each_page_once(
    store: Store, hooks: tuple[Hooks, int], tmp_path: Path
) -> None:
    ep, port = hooks
    ep.answers["/shop-hooks"] = [500]  # the shop's endpoint never takes a webhook
    mid = MerchantId("mer_paged")
    url = f"http://127.0.0.1:{port}/shop-hooks"
    store.run_sync(
        lambda c: merchants.create(
            c, mid, "paged", NOW, {"webhook_url": url, "webhook_secret": "s"}
        )
    )
    r = routes(tmp_path, port, 0, ROUTES.replace("[oncall-hook, oncall-mail]", "[oncall-hook]"))

    async def scenario() -> None:
        clock = LoopClock()
        ids = IdFactory(seed=11)
        svc = service(
            store, {"sim_a": simulator(clock=clock, hang_s=60)}, clock, timeout_s=3, deadline_s=3
        )
        pager = OpsAlerts(store, clock, ids, r)
        webhooks = WebhookSender(store, clock, svc.ids)
        registry = paymend_jobs(svc, webhooks, ops_alerts=pager)  # no send_notice handler
        worker = Worker(svc, webhooks=webhooks, registry=registry, ops_alerts=pager)

        view = await svc.pay(pay_cmd(mid, "sim_timeout_charged"))  # charged after a cancel
        await svc.cancel(mid, view.payment.id)
        now = clock.now()
        store.run_sync(
            lambda c: jobs.enqueue(c, "job_orphan", jobs.JobKind.SEND_NOTICE, "ntc_1", now, now)
        )
        await clock.sleep(2)
        for _ in range(14):  # three days and more: the webhook retries run out
            await worker.sweep()
            await clock.sleep(6 * 3600)
        await worker.sweep()  # the last given up is planned and sent

        (buried,) = events(store, OpsEventKind.JOB_BURIED)
        assert buried.title == "job given up: send_notice ntc_1"
        assert buried.facts["job_id"] == "job_orphan" and buried.status == repo.PAGED
        (duplicate,) = events(store, OpsEventKind.DUPLICATE_CHARGE)
        assert duplicate.severity == "critical" and duplicate.scope == {"channel": "sim_a"}
        assert duplicate.facts["payment_id"] == view.payment.id
        given_up = events(store, OpsEventKind.WEBHOOK_GIVEN_UP)
        deliveries = {e.facts["delivery_id"] for e in given_up}
        assert len(given_up) == len(deliveries) >= 2
        assert {e.facts["event_type"] for e in given_up} >= {"payment.duplicate_charge"}
        assert all(e.title.startswith("webhook given up after 3 days") for e in given_up)
        assert all(url not in e.title for e in given_up)  # the host only

        for event in (buried, duplicate, *given_up):  # the first level, once per route
            assert pages(store, event.id) == [("oncall-hook", "sent")]
        titles = ep.titles(ONCALL)
        assert len(titles) == 2 + len(given_up)
        assert "[MAJOR] job given up: send_notice ntc_1" in titles
        assert any(t.startswith("[CRITICAL] a second charge for one payment") for t in titles)
        keys = [h[ALERT_KEY_HEADER.lower()] for p, _, h in ep.got if p == ONCALL]
        assert len(set(keys)) == len(keys)
        assert sorted(audited(store, "ops_alerts.page")) == sorted(
            f"ops_event:{e.id}" for e in (buried, duplicate, *given_up)
        )

        # found again (a replayed transaction, another worker): nothing new goes out
        again = store.run_sync(
            lambda c: raise_event(
                c, clock.now(), OpsEventKind.JOB_BURIED, "job_orphan", "job given up: again"
            )
        )
        assert again is False
        await worker.sweep()
        await worker.sweep()
        assert len(ep.titles(ONCALL)) == len(titles)

    run_virtual(scenario())


def test_a_playbook_that_only_alerts_pages_unless_a_silence_or_the_severities_hold_it(
    store: Store, hooks: tuple[Hooks, int], tmp_path: Path
) -> None:
    ep, port = hooks
    path = tmp_path / "playbooks.yaml"
    path.write_text(ALERT_ONLY)
    r = routes(tmp_path, port, free_port(), ROUTES + "severities: [critical, major]\n")

    async def scenario() -> None:
        clock = LoopClock()
        ids = IdFactory(seed=12)
        channels = {name: simulator(name, clock=clock) for name in ("sim_a", "sim_b")}
        svc = service(store, channels, clock, routing=("sim_a", "sim_b"))
        pager = OpsAlerts(store, clock, ids, r)
        runner = PlaybookRunner(svc, load_playbooks(path))
        webhooks = WebhookSender(store, clock, svc.ids)
        registry = paymend_jobs(svc, webhooks, ops_alerts=pager)
        worker = Worker(svc, None, webhooks, runner, registry, pager)
        silence = await SilenceService(store, clock, ids).add(
            {"channel": "sim_b"}, clock.now() + timedelta(minutes=30), "sim_b work", "operator:lin"
        )
        for name in ("sim_a", "sim_b"):
            svc.health.force_open(channel_key(name), clock.monotonic(), "test: tripped")
        await worker.sweep()
        await worker.sweep()
        await worker.sweep()

        flaky = {e.scope["channel"]: e for e in events(store, OpsEventKind.PLAYBOOK_ALERT)}
        assert set(flaky) == {"sim_a", "sim_b"}
        assert flaky["sim_a"].status == repo.PAGED and flaky["sim_b"].status == repo.SILENCED
        assert ep.titles(ONCALL) == ["[MAJOR] A channel's circuit opened (sim_a)"]
        body = ep.got[0][1]["message"]
        assert "why: circuit open" in body and "No incident was opened" in body
        assert pages(store, flaky["sim_b"].id) == [
            ("oncall-hook", "silenced"),
            ("oncall-mail", "silenced"),
        ]
        assert audited(store, "ops_alerts.silenced") == [f"ops_event:{flaky['sim_b'].id}"]
        assert silence.id in str(
            store.run_sync(lambda c: alerts_repo.alerts_of(c, flaky["sim_b"].id))[0].reason
        )

        # a minor failure, below the routes file's severities: recorded, not paged
        now = clock.now()
        store.run_sync(
            lambda c: raise_event(
                c,
                now,
                OpsEventKind.WEBHOOK_GIVEN_UP,
                "dlv_1",
                "webhook given up: x",
                delivery_id="dlv_1",
            )
        )
        # the provider mismatches (raised by engine/notifications.py and refunds.py)
        store.run_sync(
            lambda c: raise_event(
                c,
                now,
                OpsEventKind.AMOUNT_MISMATCH,
                "att_1:100",
                "sim_a notified 100",
                scope={"channel": "sim_a"},
            )
        )
        await worker.sweep()
        await worker.sweep()
        (minor,) = events(store, OpsEventKind.WEBHOOK_GIVEN_UP)
        assert minor.status == repo.NOT_PAGED and pages(store, minor.id) == []
        assert ep.titles(ONCALL)[-1] == "[CRITICAL] sim_a notified 100"

    run_virtual(scenario())
