"""The FastAPI application."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse, Response
from fastapi.telemetry import TelemetryConfig
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from paymend import __version__
from paymend.api import errors, openapi
from paymend.api.app_state import AppState
from paymend.api.checked import check_every_route
from paymend.api.failures import router as failures_router
from paymend.api.feedback import router as feedback_router
from paymend.api.guard import RequestGuard
from paymend.api.incidents import router as incidents_router
from paymend.api.inputs import safe_parameters
from paymend.api.listing import router as listing_router
from paymend.api.notice_prefs import router as notice_prefs_router
from paymend.api.operators import router as operators_router
from paymend.api.ops import router as ops_router
from paymend.api.payments import router as payments_router
from paymend.api.providers import router as providers_router
from paymend.api.risk import router as risk_router
from paymend.api.shapes import Health
from paymend.api.silences import router as silences_router
from paymend.console.router import router as console_router
from paymend.customers.router import router as customers_router
from paymend.customers.web import load_pages
from paymend.domain.errors import Unavailable
from paymend.engine.runtime import Runtime
from paymend.observability import get_logger
from paymend.observability.tracing import configure_tracing
from paymend.store.database import ping

log = get_logger("paymend.api")
# FastAPI's own OpenTelemetry is off: paymend's guard makes each request's one server
# span (card-free ids, `observability/tracing.py`), its metrics are Prometheus's, and its
# logs are masked; FastAPI's logs would carry exception messages unmasked. Off, it also
# costs nothing per request (it asks the global providers on every call otherwise).
NO_FASTAPI_TELEMETRY: TelemetryConfig = {
    "tracing": False,
    "metrics": False,
    "logs": False,
    "operation_spans": False,
}
DESCRIPTION = """
paymend sits between your checkout and your payment providers. Create a payment with
`POST /v1/payments`; the answer tells you its status and, when it failed, why.

Authenticate with `Authorization: Bearer sk_…` (create a key with
`paymend merchants create NAME`). Amounts are integers in the currency's minor units.
Send an `Idempotency-Key` header on every POST so a retried request never pays twice.
Errors are `{"error": {"type", "code", "message", "param"}}` with stable codes; each
operation lists the statuses and codes it can answer. A request that is not valid HTTP/1.1
gets 400 `invalid_http_request` before it reaches any operation.

The ops API (`/v1/ops/…`) takes an operator's own key (`Authorization: Bearer opk_…`,
from `paymend operators create NAME --role ROLE`); each endpoint names the role it needs.
"""


def create_app(runtime: Runtime, *, run_worker: bool = False) -> FastAPI:
    """The app. Its lifespan registers the process's instance and beats for it, runs the
    worker (`run_worker`), and on shutdown stops the worker, then marks the instance
    stopped. Setting `app.state.stopping` stops the worker early: the server does so as
    soon as it stops accepting requests, while the ones in flight finish."""
    configure_tracing()
    stopping = asyncio.Event()

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with runtime.alive():
            task = asyncio.create_task(runtime.worker.run(stopping)) if run_worker else None
            try:
                yield
            finally:
                stopping.set()
                if task is not None:
                    await task

    # /docs and /redoc load their scripts and styles from the package (fastapi-offline),
    # never from a CDN: they work where the server has no internet access
    app: FastAPI = FastAPIOffline(
        title="paymend",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        generate_unique_id_function=openapi.operation_id,
        swagger_ui_parameters={"validatorUrl": None},  # no call to an online validator
        telemetry=NO_FASTAPI_TELEMETRY,
    )
    check_every_route(app)  # the docs pages, /healthz, /metrics: api/checked.py
    if runtime.settings.admin_key:
        log.warning(
            "admin_key_ignored",
            why="PAYMEND_ADMIN_KEY is no longer used: give each operator a key with "
            "`paymend operators create NAME --role admin|ops|support|viewer`",
        )
    # a broken FAQ or help file: no start
    app.state = AppState(runtime, stopping, load_pages(runtime))
    errors.install(app)
    app.include_router(payments_router)
    app.include_router(listing_router)
    app.include_router(notice_prefs_router)
    # the console's and the customers' routers sit below the API: checked as a dependency
    checked = [Depends(safe_parameters)]
    app.include_router(customers_router, dependencies=checked)  # /pay, /help before /help/{x}
    app.include_router(failures_router)
    app.include_router(ops_router)
    app.include_router(incidents_router)
    app.include_router(silences_router)
    app.include_router(operators_router)
    app.include_router(providers_router)
    app.include_router(console_router, dependencies=checked)  # /console (docs/console.md)
    app.include_router(risk_router)
    app.include_router(feedback_router)

    @app.get(
        "/healthz",
        tags=["ops"],
        summary="Liveness and database reachability",
        response_model=Health,
        responses={503: {"model": Health, "description": "the database is unreachable"}},
    )
    async def healthz() -> JSONResponse:
        try:
            await runtime.store.run(ping)
        except Unavailable:
            return JSONResponse(Health(status="degraded", database="unreachable"), 503)
        return JSONResponse(Health(status="ok", database="ok"))

    @app.get(
        "/metrics",
        tags=["ops"],
        summary="Prometheus metrics",
        response_class=Response,
        responses={
            200: {
                "description": "The Prometheus text format",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        },
    )
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    openapi.install(app, lambda: runtime.known)

    app.add_middleware(RequestGuard, body_timeout_s=runtime.settings.http_body_timeout)
    return app
