"""A generic JSON endpoint through apprise: a real local HTTP server gets the notice."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from paymend.notify.apprise_channel import AppriseChannel
from paymend.notify.channel import Channel, Message
from tests import local_server


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
    with local_server.serving(Route("/hooks/{who}", ep.receive, methods=["POST"])) as port:
        yield ep, port


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
