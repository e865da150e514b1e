"""Paging ops about incidents, end to end: incidents in the real database, the real
worker and job queue, pages to a real JSON endpoint on 127.0.0.1 and a real SMTP server
(aiosmtpd). Reminders and escalation run on the virtual loop's clock."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from paymend.datafiles import DataFileError
from paymend.domain.incident import Incident, IncidentEventKind
from paymend.engine.clock import LoopClock
from paymend.engine.ids import IdFactory
from paymend.engine.incidents import IncidentService
from paymend.engine.job_registry import paymend_jobs
from paymend.engine.ops_alerts import ALERT_KEY_HEADER, OpsAlerts
from paymend.engine.silences import SilenceService
from paymend.engine.virtual_time import run_virtual
from paymend.engine.webhooks import WebhookSender
from paymend.engine.worker import Worker
from paymend.notify.ops_routes import Routes, load_routes
from paymend.store import incidents as incident_repo
from paymend.store import ops_alerts as repo
from paymend.store.database import Store
from paymend.store.tables import audit_log
from tests import local_server
from tests.helpers import service, simulator
from tests.local_server import free_port
from tests.notify.test_email_channel import Inbox
from tests.notify.test_email_channel import smtp as smtp  # the SMTP server fixture

TOKEN = "t0ps3cret"


class Hooks:
    """A chat bot / JSON tool stand-in: records each POST, answers `status` (a list is
    used up one answer per request, then 200)."""

    def __init__(self) -> None:
        self.got: list[tuple[str, dict[str, Any], dict[str, str]]] = []
        self.answers: dict[str, list[int]] = {}

    async def receive(self, request: Request) -> Response:
        path = request.url.path
        self.got.append((path, json.loads(await request.body()), dict(request.headers)))
        queue = self.answers.get(path)  # the last answer stays
        status = (queue.pop(0) if len(queue) > 1 else queue[0]) if queue else 200
        return Response(status_code=status)

    def titles(self, path: str) -> list[str]:
        return [body["title"] for p, body, _ in self.got if p == path]


@pytest.fixture
def hooks() -> Iterator[tuple[Hooks, int]]:
    ep = Hooks()
    with local_server.serving(Route("/{path:path}", ep.receive, methods=["POST"])) as port:
        yield ep, port


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url, inline=True)
    yield s
    s.close()


ROUTES = """\
routes:
  oncall-hook: "json://127.0.0.1:{port}/oncall/${{OPS_HOOK_TOKEN}}"
  oncall-mail: "mailto://alerts@127.0.0.1:{smtp}?mode=insecure&from=alerts@example.com&to=oncall@example.com"
  leads-hook: "json://127.0.0.1:{port}/leads"
levels:
  - routes: [oncall-hook, oncall-mail]
    remind_every: 5m
    escalate_after: 12m
  - routes: [leads-hook]
    remind_every: 10m
incident_url: "https://ops.example.com/v1/ops/incidents/{{incident_id}}"
retry: [10s, 30s]
"""


def routes(tmp_path: Path, port: int, smtp_port: int, text: str = ROUTES) -> Routes:
    path = tmp_path / "ops-routes.yaml"
    path.write_text(text.format(port=port, smtp=smtp_port))
    return load_routes(path, {"OPS_HOOK_TOKEN": TOKEN})


class Room:
    """The engine with ops paging, as the runtime wires it (call inside the loop)."""

    def __init__(self, store: Store, r: Routes) -> None:
        self.store = store
        self.clock = LoopClock()
        self.ids = IdFactory(seed=3)
        self.svc = service(store, {"sim_a": simulator(clock=self.clock)}, self.clock)
        self.pager = OpsAlerts(store, self.clock, self.ids, r)
        self.incidents = IncidentService(store, self.clock, self.ids)
        self.silences = SilenceService(store, self.clock, self.ids)

    def worker(self) -> Worker:
        webhooks = WebhookSender(self.store, self.clock, self.svc.ids)
        registry = paymend_jobs(self.svc, webhooks, ops_alerts=self.pager)
        return Worker(self.svc, webhooks=webhooks, registry=registry, ops_alerts=self.pager)

    def open(self, playbook: str = "channel-down", channel: str = "sim_a") -> str:
        now = self.clock.now()

        def write(conn: sa.Connection) -> str:
            incident = incident_repo.open_incident(
                conn,
                Incident.new(
                    self.ids.new("inc"),
                    playbook,
                    f"Channel {channel} is down",
                    "critical",
                    {"channel": channel},
                    channel,
                    now,
                    affected_payments=40,
                    diagnosis=[{"scope": {"channel": channel}, "calls": 50, "failures": 40}],
                ),
            )
            incident_repo.add_event(conn, incident.id, now, "signal", "error rate 80%")
            return incident.id

        return self.store.run_sync(write)

    def event(self, incident_id: str, message: str) -> None:
        now = self.clock.now()
        self.store.run_sync(
            lambda c: incident_repo.add_event(
                c, incident_id, now, IncidentEventKind.ACTION, message
            )
        )

    def resolve(self, incident_id: str) -> None:
        now = self.clock.now()
        self.store.run_sync(lambda c: incident_repo.resolve(c, incident_id, now, "recovered"))

    async def minutes(self, worker: Worker, n: float) -> None:
        """Let `n` minutes pass, the worker sweeping every 10 s as it does."""
        for _ in range(round(n * 6)):
            await self.clock.sleep(10)
            await worker.sweep()


def kinds(store: Store, incident_id: str) -> list[tuple[str, str, str]]:
    alerts = store.run_sync(lambda c: repo.alerts_of(c, incident_id))
    return [(a.kind, a.route, a.status) for a in alerts]


def test_one_page_per_incident_with_reminders_escalation_ack_and_resolution(
    store: Store, hooks: tuple[Hooks, int], smtp: tuple[Inbox, int], tmp_path: Path
) -> None:
    ep, port = hooks
    inbox, smtp_port = smtp
    oncall, leads = f"/oncall/{TOKEN}", "/leads"

    async def scenario() -> None:
        room = Room(store, routes(tmp_path, port, smtp_port))
        worker = room.worker()
        incident_id = room.open()
        await worker.sweep()
        await worker.sweep()
        (title,) = ep.titles(oncall)
        assert title == "[CRITICAL] incident opened: Channel sim_a is down"
        ((_, body, headers),) = ep.got
        assert f"https://ops.example.com/v1/ops/incidents/{incident_id}" in body["message"]
        assert "failures concentrate in channel=sim_a: 40 of 50 calls failed" in body["message"]
        assert headers[ALERT_KEY_HEADER.lower()] == f"{incident_id}:opened:oncall-hook"
        ((envelope, mail),) = inbox.mails
        assert envelope.rcpt_tos == ["oncall@example.com"]
        assert mail["Subject"] == title

        for i in range(30):  # the playbook's later actions: folded, no message of their own
            room.event(incident_id, f"held payment {i}")
        await room.minutes(worker, 4.5)
        assert len(ep.got) == 1 and len(inbox.mails) == 1

        await room.minutes(worker, 1)  # 5 minutes unacknowledged: the first reminder
        assert ep.titles(oncall)[1].startswith("[CRITICAL] reminder 1, not acknowledged")
        reminder = ep.got[1][1]["message"]
        assert "Since the last message:" in reminder and "held payment 29" in reminder
        assert "(25 earlier entries in the incident)" in reminder
        assert len(inbox.mails) == 2

        await room.minutes(worker, 7)  # 12 minutes: the leads are paged too
        assert ep.titles(leads) == [
            "[CRITICAL] escalated to level 2, not acknowledged: Channel sim_a is down"
        ]
        assert len(ep.titles(oncall)) == 3  # reminders at 5 and 10 minutes

        await room.incidents.acknowledge(incident_id, "operator:lin", "looking at sim_a")
        await room.minutes(worker, 1)
        acknowledged = "[CRITICAL] acknowledged by operator:lin: Channel sim_a is down"
        assert ep.titles(leads)[-1] == acknowledged and ep.titles(oncall)[-1] == acknowledged
        await room.minutes(worker, 30)  # acknowledged: no more reminders, no escalation
        assert len(ep.titles(oncall)) == 4 and len(ep.titles(leads)) == 2

        room.resolve(incident_id)
        await room.minutes(worker, 0.5)
        assert ep.titles(oncall)[-1].startswith("[CRITICAL] resolved: Channel sim_a is down")
        assert ep.titles(leads)[-1].startswith("[CRITICAL] resolved")
        assert "after 4" in ep.got[-1][1]["message"]  # 48 minutes or so
        await room.minutes(worker, 20)
        # on call: opened, 2 reminders, acknowledged, resolved; the leads: the last three
        assert len(ep.titles(oncall)) == 5 and len(inbox.mails) == 5
        assert len(ep.titles(leads)) == 3 and len(ep.got) == 8

        assert sorted(kinds(store, incident_id)) == sorted(
            [
                ("opened", "oncall-hook", "sent"),
                ("opened", "oncall-mail", "sent"),
                ("reminder", "oncall-hook", "sent"),
                ("reminder", "oncall-mail", "sent"),
                ("reminder", "oncall-hook", "sent"),
                ("reminder", "oncall-mail", "sent"),
                ("escalated", "leads-hook", "sent"),
                ("acknowledged", "oncall-hook", "sent"),
                ("acknowledged", "oncall-mail", "sent"),
                ("acknowledged", "leads-hook", "sent"),
                ("resolved", "oncall-hook", "sent"),
                ("resolved", "oncall-mail", "sent"),
                ("resolved", "leads-hook", "sent"),
            ]
        )
        timeline = store.run_sync(lambda c: incident_repo.get(c, incident_id)).events or []
        notes = [e.message for e in timeline if e.kind == "note"]
        assert notes[0] == "ops paged (opened) on oncall-hook, oncall-mail"
        assert "ops paged (escalated) on leads-hook" in notes

    run_virtual(scenario())


def test_two_workers_and_a_replayed_plan_send_each_message_once(
    store: Store, hooks: tuple[Hooks, int], tmp_path: Path
) -> None:
    ep, port = hooks

    async def scenario() -> None:
        r = routes(tmp_path, port, free_port())
        room = Room(store, r)
        # a second worker process: its own planner and job runner on the same database
        other = Room(store, r)
        other.clock = room.clock
        other.pager.clock = room.clock
        first, second = room.worker(), other.worker()
        incidents = [room.open(channel=f"sim_{c}") for c in "abcd"]
        for _ in range(3):
            await first.sweep()
            await second.sweep()
        # the planner's own state rolled back (as after a crash before it was saved):
        # planning again finds every message's key taken
        for incident_id in incidents:
            store.run_sync(
                partial(
                    repo.update_page,
                    incident_id=incident_id,
                    now=room.clock.now(),
                    opened_sent=False,
                )
            )
        await second.sweep()
        await first.sweep()
        hooked = [p for p, _, _ in ep.got if p.startswith("/oncall/")]
        assert len(hooked) == 4  # one message per incident, not per worker nor per plan
        keys = [h[ALERT_KEY_HEADER.lower()] for _, _, h in ep.got]
        assert sorted(keys) == sorted(f"{i}:opened:oncall-hook" for i in incidents)

    run_virtual(scenario())


def test_a_route_that_refuses_is_retried_and_every_try_logged(
    store: Store, hooks: tuple[Hooks, int], tmp_path: Path
) -> None:
    ep, port = hooks
    ep.answers[f"/oncall/{TOKEN}"] = [503, 500, 200]
    ep.answers["/leads"] = [503]  # always

    async def scenario() -> None:
        text = ROUTES.replace("[oncall-hook, oncall-mail]", "[oncall-hook, leads-hook]")
        room = Room(store, routes(tmp_path, port, free_port(), text))
        worker = room.worker()
        incident_id = room.open()
        await room.minutes(worker, 1.5)
        alerts = {a.route: a for a in store.run_sync(lambda c: repo.alerts_of(c, incident_id))}
        ok, bad = alerts["oncall-hook"], alerts["leads-hook"]
        assert (ok.status, bad.status) == ("sent", "failed")
        tries = store.run_sync(lambda c: repo.attempts(c, ok.id))
        assert [t["delivered"] for t in tries] == [False, False, True]
        assert [t["delivered"] for t in store.run_sync(lambda c: repo.attempts(c, bad.id))] == [
            False
        ] * 3  # the first try and the two retries of the routes file
        assert len(ep.titles("/leads")) == 3

    run_virtual(scenario())


def test_a_silence_holds_pages_back_until_it_ends_and_is_audit_logged(
    store: Store, hooks: tuple[Hooks, int], tmp_path: Path
) -> None:
    ep, port = hooks

    async def scenario() -> None:
        room = Room(store, routes(tmp_path, port, free_port()))
        worker = room.worker()
        until = room.clock.now() + timedelta(minutes=20)
        silence = await room.silences.add(
            {"channel": "sim_a"}, until, "sim_a maintenance window", "operator:lin"
        )
        quiet = room.open(channel="sim_a")
        loud = room.open(channel="sim_b")
        await room.minutes(worker, 15)  # past the escalation time of an unsilenced page
        assert ep.titles(f"/oncall/{TOKEN}")[0].endswith("Channel sim_b is down")
        assert all("sim_a" not in t for t in ep.titles(f"/oncall/{TOKEN}") + ep.titles("/leads"))
        timeline = store.run_sync(lambda c: incident_repo.get(c, quiet)).events or []
        assert any("held back until" in e.message and silence.id in e.message for e in timeline)

        await room.minutes(worker, 6)  # the silence ended: paged now, escalation counts anew
        sim_a = [t for t in ep.titles(f"/oncall/{TOKEN}") if "sim_a" in t]
        assert sim_a == ["[CRITICAL] incident opened: Channel sim_a is down"]
        assert not [t for t in ep.titles("/leads") if "sim_a" in t]
        assert kinds(store, loud)[0] == ("opened", "oncall-hook", "sent")

    run_virtual(scenario())
    with store.engine.connect() as conn:
        (entry,) = conn.execute(
            sa.select(audit_log).where(audit_log.c.action == "ops_alerts.silence")
        ).all()
    assert (entry.actor, entry.reason) == ("operator:lin", "sim_a maintenance window")
    assert entry.details["channel"] == "sim_a"


def test_a_silence_can_be_ended_early_and_bad_silences_change_nothing(
    store: Store, tmp_path: Path
) -> None:
    from paymend.domain.errors import Conflict, InvalidInput

    async def scenario() -> None:
        room = Room(store, routes(tmp_path, free_port(), free_port()))
        now = room.clock.now()
        for matchers, until in (
            ({}, now + timedelta(hours=1)),
            ({"channel": "sim_a"}, now - timedelta(minutes=1)),
            ({"channel": "sim_a"}, now + timedelta(days=31)),
            ({"colour": "red"}, now + timedelta(hours=1)),
        ):
            with pytest.raises(InvalidInput):
                await room.silences.add(matchers, until, "why", "operator:lin")
        assert await room.silences.active() == []
        made = await room.silences.add(
            {"bank": "CMB", "playbook": "bank-down"}, now + timedelta(hours=1), "x", "cli:lin"
        )
        assert [s.id for s in await room.silences.active()] == [made.id]
        ended = await room.silences.end(made.id, "fixed", "cli:lin")
        assert ended.ended_by == "cli:lin" and await room.silences.active() == []
        with pytest.raises(Conflict):
            await room.silences.end(made.id, "again", "cli:lin")

    run_virtual(scenario())


def test_a_routes_file_with_a_mistake_or_an_unset_secret_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "ops-routes.yaml"
    path.write_text(ROUTES.format(port=1, smtp=2).replace("[leads-hook]", "[lead-hook]"))
    with pytest.raises(DataFileError) as bad:
        load_routes(path, {"OPS_HOOK_TOKEN": TOKEN})
    assert bad.value.line == 9 and "no route named 'lead-hook'" in str(bad.value)
    path.write_text(ROUTES.format(port=1, smtp=2))
    with pytest.raises(DataFileError) as unset:
        load_routes(path, {})
    assert unset.value.line == 2 and "OPS_HOOK_TOKEN is not set" in str(unset.value)
    path.write_text(
        ROUTES.format(port=1, smtp=2).replace("remind_every: 10m", "escalate_after: 5m")
    )
    with pytest.raises(DataFileError) as last:
        load_routes(path, {"OPS_HOOK_TOKEN": TOKEN})
    assert last.value.line == 10 and "no next to page" in str(last.value)
    path.write_text(ROUTES.format(port=1, smtp=2))
    loaded = load_routes(path, {"OPS_HOOK_TOKEN": TOKEN})
    assert TOKEN in loaded.urls["oncall-hook"]
    assert TOKEN not in json.dumps(loaded.spec.model_dump())  # the secret is only in urls
