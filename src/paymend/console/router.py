"""The console's routes as one router (api/app.py includes it), and its static files:
the stylesheet, the chart's script and the vendored htmx and uPlot (static/vendor/README.md),
served from the package, never from a CDN."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

from paymend.console import (
    actions,
    care,
    catalogue,
    controls,
    feedback,
    incidents,
    live,
    lookup,
    sign_in,
)
from paymend.console.web import HERE, PREFIX

STATIC = HERE / "static"
# what may be served: the files shipped, by their path under static/ (nothing else is
# reachable, whatever the path says)
FILES = {
    p.relative_to(STATIC).as_posix(): p
    for p in STATIC.rglob("*")
    if p.is_file() and p.suffix in (".js", ".css")
}
TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}

router = APIRouter(include_in_schema=False)
router.include_router(sign_in.router)
router.include_router(live.router)
router.include_router(controls.router)
router.include_router(lookup.router)
router.include_router(care.router)  # before actions' /payments/{id}/{decision}
router.include_router(actions.router)
router.include_router(incidents.router)
router.include_router(catalogue.router)
router.include_router(feedback.router)  # the pain-point report (console/feedback.py)


@router.get(PREFIX + "/static/{path:path}")
async def static(path: str) -> Response:
    found = FILES.get(path)
    if found is None:
        return Response("not found", status_code=404, media_type="text/plain")
    return FileResponse(
        found,
        media_type=TYPES[found.suffix],
        headers={"Cache-Control": "public, max-age=3600"},
    )
