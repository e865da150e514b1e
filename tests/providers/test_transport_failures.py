"""A call the provider never answered, through each HTTP connector on a real socket: what
the connector cannot know decides the rest. A connection refused cannot have charged
(a clean failure); a connection cut after the request was read, or no answer in time,
may have (an unknown outcome, settled by a status query, never by a second charge)."""

from __future__ import annotations

import asyncio
import socketserver
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest

from paymend.domain.money import Money
from paymend.engine.clock import SystemClock
from paymend.providers import adyen, alipay, wechatpay
from paymend.providers.base import ChargeRequest, Provider, ProviderConnectionError
from paymend.providers.registry import ChannelSpec
from tests.providers.adyen import face as adyen_face
from tests.providers.alipay import face as alipay_face
from tests.providers.wechatpay import face as wechatpay_face

KEY = "paymend-att_aaaaaaaaaaaaaaaaaaaaaaaa"  # a valid key for every connector
NOTHING_LISTENS = "http://127.0.0.1:9"
TIMEOUT_S = 0.2  # how long a call waits for the answer that does not come


class Silent:
    """An HTTP peer on 127.0.0.1 that reads each request and never answers it: it cuts
    the connection (`hang=False`) or holds it open until the test ends (`hang=True`)."""

    def __init__(self, *, hang: bool) -> None:
        self.requests = 0
        self._release = threading.Event()
        peer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                length = 0
                for line in iter(self.rfile.readline, b""):
                    if line in (b"\r\n", b"\n"):
                        break
                    name, _, value = line.decode("latin-1").partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                self.rfile.read(length)
                peer.requests += 1
                if hang:
                    peer._release.wait()  # released when the test ends, never by a timer

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        # a short poll: `shutdown` waits for the loop's next look
        serving = threading.Thread(target=self._server.serve_forever, args=(0.01,), daemon=True)
        serving.start()

    def close(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()


# each HTTP connector: its channel's spec at a base URL, and a payment it can take
Spec = Callable[[str], ChannelSpec]
Build = Callable[[ChannelSpec, SystemClock], Provider]
Connector = tuple[Spec, Build, str, str]
CONNECTORS: dict[str, Connector] = {
    "adyen": (lambda url: adyen_face.spec(base_url=url), adyen.build, "EUR", "card"),
    "alipay": (
        lambda url: alipay_face.spec(base_url=url + "/gateway.do"),
        alipay.build,
        "CNY",
        "alipay",
    ),
    "wechatpay": (
        lambda url: wechatpay_face.spec(base_url=url),
        wechatpay.build,
        "CNY",
        "wechat_pay",
    ),
}


def authorize(name: str, url: str) -> ProviderConnectionError:
    spec_at, build, currency, method = CONNECTORS[name]
    provider = build(replace(spec_at(url), timeout_s=TIMEOUT_S), SystemClock())
    charge = ChargeRequest(KEY, "pay_1", Money(1999, currency), method, token="sim_approve")
    with pytest.raises(ProviderConnectionError) as failed:
        asyncio.run(provider.authorize(charge))
    return failed.value


@pytest.fixture
def cut() -> Iterator[Silent]:
    peer = Silent(hang=False)
    yield peer
    peer.close()


@pytest.fixture
def hung() -> Iterator[Silent]:
    peer = Silent(hang=True)
    yield peer
    peer.close()


@pytest.mark.parametrize("name", sorted(CONNECTORS))
def test_a_connection_refused_cannot_have_charged(name: str) -> None:
    failed = authorize(name, NOTHING_LISTENS)
    assert (failed.raw_code, failed.sent) == ("CONNECTION_REFUSED", False)


@pytest.mark.parametrize("name", sorted(CONNECTORS))
def test_a_connection_cut_after_the_request_may_have_charged(name: str, cut: Silent) -> None:
    failed = authorize(name, cut.url)
    assert (failed.raw_code, failed.sent) == ("CONNECTION_RESET", True)
    assert cut.requests >= 1
    assert failed.raw_message.endswith("RemoteProtocolError")


@pytest.mark.parametrize("name", sorted(CONNECTORS))
def test_no_answer_in_time_may_have_charged(name: str, hung: Silent) -> None:
    failed = authorize(name, hung.url)
    assert (failed.raw_code, failed.sent) == ("READ_TIMEOUT", True)
    assert hung.requests >= 1
    assert failed.raw_message.endswith("ReadTimeout")
