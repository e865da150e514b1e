"""Email reaches a real SMTP server on 127.0.0.1 (aiosmtpd), which the test reads."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from paymend.notify.apprise_channel import AppriseChannel
from paymend.notify.channel import Channel, Message
from paymend.notify.email_channel import EmailChannel
from paymend.notify.ops_routes import load_routes
from tests.local_server import free_port


class Inbox:
    def __init__(self) -> None:
        self.mails: list[tuple[Envelope, EmailMessage]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        mail = message_from_bytes(raw, policy=policy.default)
        assert isinstance(mail, EmailMessage)
        self.mails.append((envelope, mail))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def body() -> bytes:
    return json.dumps(
        {
            "subject": "余额不足（订单 o-42）",
            "text": "余额不足\n",
            "html": "<h1>余额不足</h1><p><a href='https://shop.example/p/pay_1'>查看</a></p>",
        }
    ).encode()


def test_an_email_arrives_with_subject_html_and_text_parts(smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    url = f"mailto://shop@127.0.0.1:{port}?mode=insecure&from=shop@example.com"
    channel = EmailChannel(url)
    assert isinstance(channel, Channel)
    sent = asyncio.run(channel.send(Message("ntc_1", "li@example.com", body())))
    assert sent.delivered
    ((envelope, mail),) = inbox.mails
    assert envelope.rcpt_tos == ["li@example.com"]
    assert mail["Subject"] == "余额不足（订单 o-42）"
    html = mail.get_body(("html",))
    text = mail.get_body(("plain",))
    assert html is not None and "https://shop.example/p/pay_1" in html.get_content()
    assert text is not None and "余额不足" in text.get_content()


def test_a_server_that_is_down_is_a_retryable_failure() -> None:
    url = f"mailto://shop@127.0.0.1:{free_port()}?mode=insecure&from=shop@example.com"
    sent = asyncio.run(EmailChannel(url).send(Message("ntc_1", "li@example.com", body())))
    assert not sent.delivered and sent.retryable


class Logins:
    """An SMTP login check: the accepted user and password, and every login tried."""

    def __init__(self, user: str, password: str) -> None:
        self.accepted = LoginPassword(user.encode(), password.encode())
        self.tried: list[LoginPassword] = []

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: object
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.tried.append(data)
        return AuthResult(success=data == self.accepted)


def login_required(inbox: Inbox, logins: Logins, port: int) -> Controller:
    """An SMTP server on 127.0.0.1 that takes mail only after a login `logins` accepts
    (in clear: a test server)."""
    return Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        authenticator=logins,
        auth_required=True,
        auth_require_tls=False,
    )


# (ASCII: smtplib sends a login as ASCII, as SMTP AUTH PLAIN and LOGIN are in practice)
# a login in clear is what a test server on 127.0.0.1 may take
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.parametrize("password", ["s3cret", "p@ss:w/rd?#%&+ =;"])
def test_the_password_from_the_environment_logs_in_whatever_it_holds(
    password: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The URL carries the user, never the password (PAYMEND_SMTP_PASSWORD): it is put
    into the URL quoted, and the server must see it as it was set."""
    monkeypatch.setenv("PAYMEND_SMTP_PASSWORD", password)
    inbox, logins, port = Inbox(), Logins("shop", password), free_port()
    controller = login_required(inbox, logins, port)
    controller.start()
    try:
        url = f"mailto://shop@127.0.0.1:{port}?mode=insecure&from=shop@example.com"
        sent = asyncio.run(EmailChannel(url).send(Message("ntc_1", "li@example.com", body())))
    finally:
        controller.stop()
    assert logins.tried and logins.tried[-1] == logins.accepted
    assert sent.delivered and len(inbox.mails) == 1


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_an_ops_route_logs_in_with_a_password_that_holds_url_characters(tmp_path: Path) -> None:
    """An ops route names its SMTP password as `${NAME}` in the URL's login: the value is
    filled in so that the server sees it as it was set, and the page arrives."""
    password = "p@ss:w/rd?#%&+ =;"
    inbox, logins, port = Inbox(), Logins("alerts", password), free_port()
    controller = login_required(inbox, logins, port)
    (tmp_path / "ops-routes.yaml").write_text(
        "routes:\n"
        f'  oncall-mail: "mailto://alerts:${{OPS_SMTP_PASSWORD}}@127.0.0.1:{port}'
        '?mode=insecure&from=alerts@example.com&to=oncall@example.com"\n'
        "levels:\n  - routes: [oncall-mail]\n"
    )
    routes = load_routes(tmp_path / "ops-routes.yaml", {"OPS_SMTP_PASSWORD": password})
    page = json.dumps({"subject": "[CRITICAL] incident opened", "text": "sim_a is down"})
    controller.start()
    try:
        channel = AppriseChannel("oncall-mail", routes.urls["oncall-mail"])
        sent = asyncio.run(channel.send(Message("inc_1", "", page.encode())))
    finally:
        controller.stop()
    assert logins.tried and logins.tried[-1] == logins.accepted
    assert sent.delivered
    ((envelope, mail),) = inbox.mails
    assert envelope.rcpt_tos == ["oncall@example.com"]
    assert mail["Subject"] == "[CRITICAL] incident opened"
