"""An incident that opens and resolves between two sweeps of the planner is still paged,
once, with both in one message (virtual clock, real database and JSON endpoint)."""

from __future__ import annotations

from pathlib import Path

from paymend.engine.virtual_time import run_virtual
from paymend.store import ops_alerts as repo
from paymend.store.database import Store
from tests.engine.test_ops_alerts import TOKEN, Hooks, Room, kinds, routes
from tests.engine.test_ops_alerts import hooks as hooks  # the JSON endpoint fixture
from tests.engine.test_ops_alerts import store as store  # the database fixture
from tests.local_server import free_port


def test_an_incident_opened_and_resolved_between_two_sweeps_is_paged_once(
    store: Store, hooks: tuple[Hooks, int], tmp_path: Path
) -> None:
    ep, port = hooks
    text_routes = routes(tmp_path, port, free_port())

    async def scenario() -> None:
        room = Room(store, text_routes)
        worker = room.worker()
        old = room.open(channel="sim_b")  # came and went long before the worker ran
        room.resolve(old)
        await room.clock.sleep(2 * 3600)
        await worker.sweep()
        incident_id = room.open()
        room.event(incident_id, "opened the circuit of sim_a")
        await room.clock.sleep(0.4)  # less than the worker's interval
        room.resolve(incident_id)
        await room.minutes(worker, 0.5)

        (title,) = ep.titles(f"/oncall/{TOKEN}")
        assert title == "[CRITICAL] opened and resolved: Channel sim_a is down"
        message = ep.got[0][1]["message"]
        assert "Resolved" in message and "after 0s" in message
        assert "action: opened the circuit of sim_a" in message
        assert "Acknowledge" not in message  # nothing left to acknowledge
        assert ep.titles("/leads") == []  # the first level only
        assert {(k, r) for k, r, _ in kinds(store, incident_id)} == {
            ("resolved", "oncall-hook"),
            ("resolved", "oncall-mail"),
        }
        assert kinds(store, old) == []
        page = store.run_sync(lambda c: repo.get_page(c, incident_id))
        assert page is not None and page.status == repo.CLOSED

    run_virtual(scenario())
