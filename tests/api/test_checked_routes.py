"""Every route refuses card data and control characters in its path and query
parameters and its Idempotency-Key before it reads anything else: an API route by its
class (api/checked.py), a console or customers' page by the dependency it was included
with (api/app.py). A route added without either would let a card number reach the logs
through a URL; this holds every route of the app to one of the two."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant

from paymend.api.app import create_app
from paymend.api.checked import CheckedRoute, check_every_route
from paymend.api.inputs import safe_parameters
from paymend.api.routes import dependants, routes_of
from paymend.config import PaymendConfig, Settings
from paymend.engine.runtime import build_runtime
from tests.api.conftest import CONFIG


@pytest.fixture
def app(sqlite_url: str) -> Iterator[FastAPI]:
    runtime = build_runtime(Settings(database_url=sqlite_url), PaymendConfig.model_validate(CONFIG))
    try:
        yield create_app(runtime)
    finally:
        runtime.close()


def _calls(dependant: Dependant) -> set[object]:
    return {d.call for d in dependants(dependant)}


def test_every_route_checks_its_parameters(app: FastAPI) -> None:
    routes = routes_of(app)
    unchecked = [
        f"{sorted(r.methods)} {r.path_format}"
        for r in routes
        if not isinstance(getattr(r, "original_route", r), CheckedRoute)
        and safe_parameters not in _calls(r.dependant)
    ]
    assert len(routes) > 50  # the whole app was read
    assert unchecked == []


def test_the_payment_routes_check_by_their_class_not_a_dependency(app: FastAPI) -> None:
    """The hot path pays for no dependency to be solved for the check."""
    payments = [r for r in routes_of(app) if r.path_format.startswith("/v1/payments")]
    assert payments
    for r in payments:
        assert isinstance(getattr(r, "original_route", r), CheckedRoute), r.path_format
        assert safe_parameters not in _calls(r.dependant), r.path_format


def test_a_route_declared_before_is_made_checked_as_it_was() -> None:
    early = FastAPI()

    @early.get("/page")
    async def page() -> dict[str, int]:
        return {}

    check_every_route(early)
    rebuilt = [r for r in early.router.routes if getattr(r, "path", "") == "/page"]
    assert [type(r) for r in rebuilt] == [CheckedRoute]


def test_a_route_the_rebuild_would_change_stops_the_app_at_start() -> None:
    early = FastAPI()

    @early.get("/page", status_code=202, tags=["pages"])
    async def page() -> dict[str, int]:
        return {}

    with pytest.raises(TypeError, match="/page would lose its status_code, tags"):
        check_every_route(early)
