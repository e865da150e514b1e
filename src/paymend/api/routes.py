"""The app's routes as it serves them (its routers' included, prefixes applied): read by
the OpenAPI document (api/openapi.py) and by a 405's `Allow` header (api/errors.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol, cast

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts


class Route(Protocol):
    """What paymend reads of a route."""

    name: str
    path_format: str
    path_regex: Any
    methods: set[str]
    include_in_schema: bool
    dependant: Dependant
    body_field: object | None
    openapi_extra: dict[str, Any] | None


def routes_of(app: FastAPI) -> list[Route]:
    """Every API route, as FastAPI's own document reads them."""
    found = iter_route_contexts(app.routes)
    return [cast(Route, c) for c in found if isinstance(c.original_route, APIRoute)]


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """The methods some route takes at `path` (a 405 names them all in `Allow`, where
    Starlette names only those of the first route it tried)."""
    methods = {m for r in routes_of(app) if r.path_regex.match(path) for m in r.methods}
    return sorted(methods)


def dependants(dependant: Dependant) -> Iterator[Dependant]:
    """Every dependency a route's dependant solves, sub-dependencies included."""
    for sub in dependant.dependencies:
        yield sub
        yield from dependants(sub)
