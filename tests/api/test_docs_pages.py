"""`/docs` and `/redoc` work without the internet: their scripts, styles and icon come
from the package (fastapi-offline), through the guard like any request."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.api.conftest import Server
from tests.helpers import WAIT_S

ASSET = re.compile(r'(?:src|href)="([^"]+)"')
CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_pages_load_everything_from_this_server(server: Server, page: str) -> None:
    answer = httpx.get(f"{server.url}{page}", timeout=WAIT_S)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    html = answer.text
    assert "http://" not in html and "https://" not in html  # no CDN, no web font
    assets = ASSET.findall(html)
    assert len(assets) >= 2, html  # a script, and a style sheet or an icon
    assert "/openapi.json" in html
    for asset in assets:
        assert asset.startswith("/static-offline-docs/"), asset
        served = httpx.get(
            f"{server.url}{asset}", params={"v": "1"}, timeout=WAIT_S
        )  # a query is fine
        assert served.status_code == 200, asset
        suffix = asset[asset.rindex(".") :]
        assert served.headers["content-type"].startswith(CONTENT_TYPES[suffix]), asset
        assert len(served.content) > 1000, asset


def test_swagger_ui_asks_no_online_validator(server: Server) -> None:
    assert '"validatorUrl": null' in httpx.get(f"{server.url}/docs", timeout=WAIT_S).text


def test_the_assets_are_counted_under_their_mount_not_as_unmatched(server: Server) -> None:
    httpx.get(f"{server.url}/static-offline-docs/swagger-ui.css", timeout=WAIT_S)
    metrics = httpx.get(f"{server.url}/metrics", timeout=WAIT_S).text
    assert 'route="/static-offline-docs",status="200"' in metrics
