"""The app's state: paymend's entries read as properties, anything else as on any State."""

from __future__ import annotations

import asyncio

from paymend.api.app import create_app
from paymend.api.app_state import AppState
from paymend.config import Settings
from paymend.engine.runtime import Runtime, build_runtime


def test_the_apps_entries_are_properties_over_the_states_own_storage(sqlite_url: str) -> None:
    runtime = build_runtime(Settings(database_url=sqlite_url))
    try:
        app = create_app(runtime)
    finally:
        runtime.close()
    state = app.state
    assert isinstance(state, AppState)
    for name in ("runtime", "stopping", "key_cache", "customer_pages"):
        assert isinstance(getattr(AppState, name), property), name
        assert getattr(state, name) is state[name]  # one storage: State's
    assert isinstance(state.runtime, Runtime) and state.runtime is runtime
    assert isinstance(state.stopping, asyncio.Event) and not state.stopping.is_set()
    state.extra = "kept"  # other entries: as on any State
    assert state.extra == state["extra"] == "kept"
    del state.extra
    assert "extra" not in list(state)
