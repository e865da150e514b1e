"""Routers whose routes check their parameters first.

`checked_router()` is `APIRouter` with `CheckedRoute` as its route class; the API's
routers are made by it and the app's own router takes the same class (api/app.py), so
a route cannot be declared without `api/inputs.check_parameters`. (The console's and
the customers' routers, in rooms below the API, are included with the same check as a
dependency; a test holds every route to one or the other.) As a FastAPI dependency the
check cost more than the check itself: a dependency is solved, called and awaited for
each request, about 1.5 % of a payment's CPU."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.routing import APIRoute

from paymend.api.inputs import check_parameters

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class CheckedRoute(APIRoute):
    """A route whose handler refuses card data and control characters in its path and
    query parameters and its Idempotency-Key before anything else reads the request
    (FastAPI's documented way to wrap a route's handler: `get_route_handler`)."""

    def get_route_handler(self) -> Handler:
        handle = super().get_route_handler()

        async def checked(request: Request) -> Response:
            check_parameters(request.scope)
            return await handle(request)

        return checked


def checked_router(**options: Any) -> APIRouter:
    """An APIRouter whose routes are CheckedRoutes."""
    return APIRouter(route_class=CheckedRoute, **options)


def check_every_route(app: FastAPI) -> None:
    """Make CheckedRoute the app's own route class, and the class of the routes it
    declared before (the offline docs pages `FastAPIOffline` adds as it builds the app)."""
    app.router.route_class = CheckedRoute
    routes = app.router.routes
    for i, r in enumerate(routes):
        if isinstance(r, APIRoute) and not isinstance(r, CheckedRoute):
            checked = CheckedRoute(
                r.path,
                r.endpoint,
                methods=r.methods,
                name=r.name,
                include_in_schema=r.include_in_schema,
                response_class=r.response_class,
            )
            # None and empty alike: nothing declared ([] and None callbacks, say)
            lost = [
                a for a in _COMPARED if (getattr(checked, a) or None) != (getattr(r, a) or None)
            ]
            if lost:  # the rebuild would change the route: say so at start-up
                raise TypeError(f"route {r.path} would lose its {', '.join(lost)}")
            routes[i] = checked


# what a pre-declared route rebuilt from its path, endpoint, methods, name, schema
# visibility and response class must keep
_COMPARED = (
    "dependencies",
    "status_code",
    "response_model",
    "responses",
    "callbacks",
    "openapi_extra",
    "tags",
    "deprecated",
)
