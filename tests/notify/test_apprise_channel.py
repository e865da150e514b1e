"""A generic JSON endpoint through apprise: a real local HTTP server gets the notice."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from paymend.notify.apprise_channel import AppriseChannel
from paymend.notify.channel import Channel, Message
from tests.engine.test_webhooks import free_port


class Endpoint:
    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.got: list[tuple[str, dict[str, Any]]] = []

    async def receive(self, request: Request) -> Response:
        self.got.append((request.url.path, json.loads(await request.body())))
        return Response(status_code=self.status)


@pytest.fixture
def endpoint() -> Iterator[tuple[Endpoint, int]]:
    ep = Endpoint()
    port = free_port()
    app = Starlette(routes=[Route("/hooks/{who}", ep.receive, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive()
        time.sleep(0.01)  # a real server thread binding its port
    yield ep, port
    server.should_exit = True
    thread.join(10)


def message() -> Message:
    body = json.dumps({"subject": "Payment received (order o-1)", "text": "Thank you!"})
    return Message("ntc_1", "ops team", body.encode())


def test_a_json_endpoint_receives_title_and_text(endpoint: tuple[Endpoint, int]) -> None:
    ep, port = endpoint
    channel = AppriseChannel("json", f"json://127.0.0.1:{port}/hooks/{{recipient}}")
    assert isinstance(channel, Channel)
    sent = asyncio.run(channel.send(message()))
    assert sent.delivered
    ((path, body),) = ep.got
    assert path == "/hooks/ops%20team" or path == "/hooks/ops team"
    assert body["title"] == "Payment received (order o-1)" and body["message"] == "Thank you!"


def test_an_endpoint_that_refuses_is_a_retryable_failure(endpoint: tuple[Endpoint, int]) -> None:
    ep, port = endpoint
    ep.status = 503
    sent = asyncio.run(AppriseChannel("json", f"json://127.0.0.1:{port}/hooks/x").send(message()))
    assert not sent.delivered and sent.retryable and len(ep.got) == 1
