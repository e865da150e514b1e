"""What every console page shares: the templates, the operator's session and locale from
their cookies, form bodies checked as the API checks JSON ones, and the CSRF check.

Cookies: `paymend_console` holds the session token (HttpOnly, SameSite=Strict, Secure
when the request came over HTTPS, path /console); `paymend_console_login` a one-off
token for the log-in form (there is no session yet to derive one from). Every POST
carries the session's CSRF token in its `csrf` field (store nothing: accounts.csrf_token).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from paymend.console import i18n
from paymend.console.accounts import Accounts, Session
from paymend.domain.card_data import find_card_data
from paymend.domain.errors import PaymendError
from paymend.domain.printable import unprintable
from paymend.domain.roles import Role
from paymend.engine.runtime import Runtime

HERE = Path(__file__).parent
SESSION_COOKIE = "paymend_console"
LOGIN_COOKIE = "paymend_console_login"
PREFIX = "/console"
TEMPLATES = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,  # a name a template misspells is an error, not a blank
    trim_blocks=True,
    lstrip_blocks=True,
)


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def accounts(request: Request) -> Accounts:
    runtime = runtime_of(request)
    console = runtime.config.console
    return Accounts(runtime.store, runtime.clock, console.session_idle, console.session_max)


def locale_of(request: Request) -> str:
    return i18n.negotiate(request.cookies.get(i18n.COOKIE), request.headers.get("accept-language"))


def utc(value: datetime | str | None) -> str:
    """A time as the console shows it; an ISO string (as a review keeps it) is read."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if value else ""


def render(
    request: Request,
    template: str,
    session: Session | None,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A page in the operator's language. `t(key, **values)` gives the words."""
    locale = locale_of(request)

    def t(key: str, /, **values: object) -> str:
        return i18n.translate(locale, key, **values)

    page = TEMPLATES.get_template(template).render(
        t=t,
        locale=locale,
        locales=i18n.LOCALE_NAMES,
        session=session,
        operator=session.operator if session else None,
        csrf=session.csrf if session else "",
        path=request.url.path,
        here=_here(request),
        utc=utc,
        can=lambda role: session is not None and session.operator.role.allows(Role(role)),
        **context,
    )
    return HTMLResponse(page, status_code=status, headers=NO_STORE)


# pages hold customers' (masked) data: never cached by the browser or a proxy
NO_STORE = {"Cache-Control": "no-store", "X-Frame-Options": "DENY"}


def _here(request: Request) -> str:
    query = f"?{request.url.query}" if request.url.query else ""
    return request.url.path + query


def safe_next(target: str | None) -> str:
    """Where to go after logging in or switching language: a console page, never another
    site (`//evil.example` and `/console.evil` are refused)."""
    if target and (target == PREFIX or target.startswith(PREFIX + "/")) and "\\" not in target:
        return target
    return PREFIX + "/health"


async def signed_in(request: Request) -> Session | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token or len(token) > 100:
        return None
    return await accounts(request).session(token)


def to_login(request: Request, *, expired: bool) -> Response:
    """Not logged in (or no longer): to the log-in page, back here afterwards. An htmx
    request (a live panel polling) is sent there by its HX-Redirect header."""
    target = f"{PREFIX}/login?next={quote(_here(request))}" + ("&expired=1" if expired else "")
    if request.headers.get("hx-request") == "true":
        response: Response = Response(status_code=401, headers={"HX-Redirect": target})
    else:
        response = RedirectResponse(target, status_code=303)
    # a stale cookie is left alone (it opens nothing; the next log-in replaces it), so
    # every request still carrying it, a poll in flight too, is told the session ended
    return response


@dataclass(frozen=True, slots=True)
class Gate:
    """The outcome of checking a request: its session, or the answer to give instead."""

    session: Session | None
    refusal: Response | None


async def gate(request: Request, needed: Role) -> Gate:
    """The request's session if its operator's role allows `needed`; else the log-in page
    or a 403 page."""
    session = await signed_in(request)
    if session is None:
        had = SESSION_COOKIE in request.cookies
        return Gate(None, to_login(request, expired=had))
    if not session.operator.role.allows(needed):
        return Gate(session, refused(request, session, needed))
    return Gate(session, None)


def refused(request: Request, session: Session, needed: Role) -> HTMLResponse:
    locale = locale_of(request)
    message = i18n.translate(
        locale, "role.refused", role=session.operator.role.value, needed=needed.value
    )
    return render(request, "error.html", session, 403, message=message)


class FormRefused(Exception):
    """A form body the console does not read: not a form, card data, control characters."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def read_form(request: Request) -> dict[str, str]:
    """The urlencoded form of a POST, each field once, refused before anything uses it
    when it holds card data or a control character (the guard passes /console bodies on
    unread; these are the rules it applies to JSON bodies)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if body and ctype != "application/x-www-form-urlencoded":
        raise FormRefused(415, "send the form as application/x-www-form-urlencoded")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        raise FormRefused(400, "the form is not valid UTF-8") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        form.setdefault(name, value)
    # The CSRF token is our own hex digest, checked against the session and never kept;
    # its digits can by chance form a Luhn-valid run, so it is not scanned as text.
    if find_card_data({k: v for k, v in form.items() if k != "csrf"}) is not None:
        raise FormRefused(400, "card numbers and security codes are never accepted here")
    for name, value in form.items():
        if unprintable(name) or unprintable(value, multiline=True):
            raise FormRefused(400, f"'{name[:40]}' holds a control character")
    return form


def csrf_ok(session: Session, form: dict[str, str]) -> bool:
    return hmac.compare_digest(form.get("csrf", ""), session.csrf)


def csrf_refused(request: Request, session: Session | None) -> HTMLResponse:
    message = i18n.translate(locale_of(request), "csrf.refused")
    return render(request, "error.html", session, 403, message=message)


async def checked_form(request: Request, session: Session) -> dict[str, str] | Response:
    """The POST's form if it reads and carries the session's CSRF token; else the error
    page to answer with (log-out uses it alone: it needs a session, not a role)."""
    try:
        form = await read_form(request)
    except FormRefused as refused:
        return render(request, "error.html", session, refused.status, message=refused.message)
    if not csrf_ok(session, form):
        return csrf_refused(request, session)
    return form


@dataclass(frozen=True, slots=True)
class Action:
    """An operator's POST that passed the gate, the form rules and the CSRF check, with
    the answers every action gives, so each handler holds only what it does."""

    request: Request
    session: Session
    runtime: Runtime
    locale: str
    form: dict[str, str]

    def fail(self, key: str, status: int = 400, **values: object) -> HTMLResponse:
        """The error page with the words for `key`."""
        message = i18n.translate(self.locale, key, **values)
        return render(self.request, "error.html", self.session, status, message=message)

    def error(self, exc: PaymendError) -> HTMLResponse:
        """The error page for what the engine refused, with its status and message."""
        return render(self.request, "error.html", self.session, exc.status, message=exc.message)

    def reason(self) -> str | None:
        """The `reason` field, required and at most 500 characters (the audit log's)."""
        reason = self.form.get("reason", "").strip()
        return reason if reason and len(reason) <= 500 else None

    def done(self, page: str, key: str, **values: object) -> RedirectResponse:
        """Back to a console page (after PREFIX), telling what was done (POST-redirect-GET)."""
        done = i18n.translate(self.locale, key, **values)
        return RedirectResponse(f"{PREFIX}{page}?done={quote(done)}", status_code=303)


async def action_form(request: Request, needed: Role) -> Action | Response:
    """The checks every console POST makes before acting, in order: the session and role
    (gate), then the form and its CSRF token; an Action, or the answer to give instead."""
    checked = await gate(request, needed)
    if checked.refusal or checked.session is None:
        return checked.refusal or Response(status_code=401)
    form = await checked_form(request, checked.session)
    if isinstance(form, Response):
        return form
    return Action(request, checked.session, runtime_of(request), locale_of(request), form)


def secure(request: Request) -> bool:
    return request.url.scheme == "https"
