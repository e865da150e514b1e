"""The customers' pages as one router (api/app.py includes it): the payment status page
and the help centre (docs/customers.md). Their one script is the console's vendored
htmx, served by the console's static route, never from a CDN."""

from __future__ import annotations

from fastapi import APIRouter

from paymend.customers import help_centre, status

router = APIRouter(include_in_schema=False)
router.include_router(status.router)
router.include_router(help_centre.router)
