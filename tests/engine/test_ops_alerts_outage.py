"""A primary channel's outage, as the playbooks see it, pages ops once per incident:
the first message, a reminder while nobody acknowledges it, and the resolution, however
many payments the outage touched."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from paymend.engine.job_registry import paymend_jobs
from paymend.engine.ops_alerts import OpsAlerts
from paymend.engine.virtual_time import run_virtual
from paymend.engine.webhooks import WebhookSender
from paymend.engine.worker import Worker
from paymend.notify.ops_routes import load_routes
from paymend.store import incidents
from paymend.store import ops_alerts as repo
from paymend.store.database import Store
from tests.engine.test_ops_alerts import Hooks
from tests.engine.test_ops_alerts import hooks as hooks  # the JSON endpoint fixture
from tests.engine.test_ops_alerts import store as store  # the database fixture
from tests.engine.test_playbooks import pay_many, two_channels
from tests.helpers import make_merchant

ROUTES = """\
routes:
  oncall: "json://127.0.0.1:{port}/oncall"
levels:
  - routes: [oncall]
    remind_every: 1m
"""


def test_a_primary_outage_pages_once_per_incident_with_reminder_and_resolution(
    store: Store, hooks: tuple[Hooks, int], tmp_path: Path
) -> None:
    ep, port = hooks
    (tmp_path / "routes.yaml").write_text(ROUTES.format(port=port))
    mid, _ = make_merchant(store)

    async def scenario() -> None:
        clock, a, _, svc, runner = two_channels(store)
        pager = OpsAlerts(store, clock, svc.ids, load_routes(tmp_path / "routes.yaml"))
        webhooks = WebhookSender(store, clock, svc.ids)
        worker = Worker(
            svc,
            webhooks=webhooks,
            playbooks=runner,
            registry=paymend_jobs(svc, webhooks, ops_alerts=pager),
            ops_alerts=pager,
        )
        await pay_many(svc, clock, mid, 600, 0)
        await worker.sweep()
        a.settings = dataclasses.replace(a.settings, outage=True)
        for burst in range(8):  # 800 payments in the outage, a sweep after each 100
            await pay_many(svc, clock, mid, 100, 600 + burst * 100)
            await worker.sweep()
        (opened,) = store.run_sync(lambda c: incidents.search(c, None, None, 10))
        assert opened.affected_payments >= 5
        a.settings = dataclasses.replace(a.settings, outage=False)
        quiet = 0  # bursts after the resolution: nothing more may be paged
        for burst in range(20):
            await pay_many(svc, clock, mid, 100, 1400 + burst * 100)
            await worker.sweep()
            if store.run_sync(lambda c: incidents.get(c, opened.id)).status == "resolved":
                quiet += 1
                if quiet > 2:
                    break
        await worker.sweep()
        assert store.run_sync(lambda c: incidents.get(c, opened.id)).status == "resolved"

        titles = ep.titles("/oncall")
        assert titles[0] == f"[CRITICAL] incident opened: {opened.title}"
        assert titles[-1].startswith(f"[CRITICAL] resolved: {opened.title}")
        reminders = [t for t in titles if "reminder" in t]
        assert reminders and len(titles) == 2 + len(reminders)
        elapsed_min = (clock.now() - opened.opened_at).total_seconds() / 60
        assert len(reminders) <= elapsed_min  # one a minute at most, not one a payment
        sent = store.run_sync(lambda c: repo.alerts_of(c, opened.id))
        assert {a.status for a in sent} == {"sent"}
        print(f"outage pages: {len(titles)} messages for 1 incident over {elapsed_min:.1f} min")

    run_virtual(scenario())
