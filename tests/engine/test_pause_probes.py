"""A playbook's pause lets one payment a second through as its probe, so the playbook
can see the scope answer again; an operator's pause lets nothing through."""

from __future__ import annotations

from paymend.domain.control import Control, ControlKind, ControlScope
from paymend.engine.clock import LoopClock
from paymend.engine.controls import ControlService, route_controls
from paymend.engine.ids import IdFactory
from paymend.engine.virtual_time import run_virtual
from paymend.store.database import Store
from tests.helpers import NOW


def pause(id_: str, scope: str, value: str, by: str) -> Control:
    return Control(id_, ControlKind.PAUSE, ControlScope(scope), value, None, "r", by, NOW)


def test_only_a_pause_every_part_of_which_a_playbook_set_is_probed() -> None:
    bank = pause("ctl_b", "bank", "CMB", "playbook:bank-down")
    region = pause("ctl_r", "region", "CN-North", "playbook:region-down")
    by_ops = pause("ctl_o", "region", "CN-North", "ops:li")
    assert route_controls([bank], "card", "CMB", "CN-East").probe == "ctl_b"
    assert route_controls([bank, region], "card", "CMB", "CN-North").probe == "ctl_b"
    assert route_controls([by_ops], "card", "ICBC", "CN-North").probe is None
    both = route_controls([bank, by_ops], "card", "CMB", "CN-North")
    assert both.paused_because is not None and both.probe is None  # ops said stop
    assert route_controls([bank], "card", "ICBC", "CN-East").probe is None  # not paused


def test_one_probe_a_second_passes(db_url: str) -> None:
    store = Store(db_url, inline=True)

    async def scenario() -> None:
        clock = LoopClock()
        controls = ControlService(store, clock, IdFactory(seed=1))
        assert controls.take_probe("ctl_b")
        assert not controls.take_probe("ctl_b")
        assert controls.take_probe("ctl_r")  # each pause its own
        await clock.sleep(0.5)
        assert not controls.take_probe("ctl_b")
        await clock.sleep(0.5)
        assert controls.take_probe("ctl_b")
        assert not controls.take_probe(None)  # nothing may pass an operator's pause

    try:
        run_virtual(scenario())
    finally:
        store.close()
