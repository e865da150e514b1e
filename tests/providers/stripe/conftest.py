"""Real peers for the Stripe connector: localstripe, a stateful fake Stripe run as a
process for the whole session, and a Stripe-shaped server for the answers localstripe
does not give (decline codes, 5xx, rate limits, lost answers)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.providers.stripe.shaped_server import ShapedStripe
from tests.providers.stripe.support import API_KEY

HERE = Path(__file__).parent


@pytest.fixture(scope="session")
def localstripe() -> Iterator[str]:
    """localstripe's base URL. The server prints its port once it listens."""
    process = subprocess.Popen(
        [sys.executable, str(HERE / "localstripe_server.py")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        port = process.stdout.readline().strip()
        assert port.isdigit(), f"localstripe did not start (exit code {process.poll()})"
        url = f"http://127.0.0.1:{port}"
        answer = httpx.get(f"{url}/v1/balance", auth=(API_KEY, ""), timeout=10)
        assert answer.status_code == 200, answer.text
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def shaped_server() -> Iterator[ShapedStripe]:
    server = ShapedStripe()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def shaped(shaped_server: ShapedStripe) -> Iterator[ShapedStripe]:
    """The Stripe-shaped server, with no script and no requests seen yet."""
    shaped_server.reset()
    yield shaped_server
    shaped_server.reset()
