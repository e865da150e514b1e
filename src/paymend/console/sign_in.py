"""Logging in and out, and the language switch."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from paymend.console import i18n
from paymend.console.accounts import LogInsLimited
from paymend.console.web import (
    LOGIN_COOKIE,
    PREFIX,
    SESSION_COOKIE,
    FormRefused,
    accounts,
    checked_form,
    csrf_refused,
    locale_of,
    read_form,
    render,
    safe_next,
    secure,
    signed_in,
)

router = APIRouter(prefix=PREFIX, include_in_schema=False)
LOGIN_TOKEN_BYTES = 24
Next = Annotated[str | None, Query(max_length=500)]


@router.get("")
async def index() -> Response:
    return RedirectResponse(PREFIX + "/health", status_code=303)


def _login_page(
    request: Request, next_url: str, status: int = 200, message: str | None = None
) -> Response:
    """The form, with a fresh one-off token in a cookie and in the form (there is no
    session to derive a CSRF token from yet: a forged log-in is refused too)."""
    token = secrets.token_urlsafe(LOGIN_TOKEN_BYTES)
    response = render(
        request, "login.html", None, status, login_token=token, next=next_url, message=message
    )
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        max_age=3600,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=secure(request),
    )
    return response


@router.get("/login")
async def login_form(
    request: Request,
    next: Next = None,
    expired: Annotated[str | None, Query(max_length=1)] = None,
    out: Annotated[str | None, Query(max_length=1)] = None,
) -> Response:
    if await signed_in(request) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    key = "login.expired" if expired else "login.out" if out else None
    message = i18n.translate(locale_of(request), key) if key else None
    return _login_page(request, safe_next(next), message=message)


@router.post("/login")
async def login(request: Request) -> Response:
    try:
        form = await read_form(request)
    except FormRefused as refused:
        return render(request, "error.html", None, refused.status, message=refused.message)
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    if not cookie or not hmac.compare_digest(form.get("login_token", ""), cookie):
        return csrf_refused(request, None)
    next_url = safe_next(form.get("next"))
    ip = request.client.host if request.client else ""
    try:
        session = await accounts(request).log_in(
            form.get("name", "").strip(), form.get("password", ""), ip
        )
    except LogInsLimited as limited:
        message = i18n.translate(locale_of(request), "login.limited", minutes=limited.minutes)
        return _login_page(request, next_url, 429, message)
    if session is None:
        message = i18n.translate(locale_of(request), "login.failed")
        return _login_page(request, next_url, 401, message)
    response = RedirectResponse(next_url, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        session.token,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=secure(request),
    )  # a browser-session cookie: the server ends the session itself (idle, maximum)
    response.delete_cookie(LOGIN_COOKIE, path=PREFIX)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    session = await signed_in(request)
    if session is None:
        return RedirectResponse(PREFIX + "/login", status_code=303)
    form = await checked_form(request, session)
    if isinstance(form, Response):
        return form
    await accounts(request).log_out(session)
    response = RedirectResponse(PREFIX + "/login?out=1", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path=PREFIX)
    return response


@router.get("/locale/{locale}")
async def switch_locale(request: Request, locale: str, next: Next = None) -> Response:
    """Keep the operator's language in a cookie. A GET link, usable without JavaScript:
    it changes nothing on the server, only which words the next pages use."""
    response = RedirectResponse(safe_next(next), status_code=303)
    if locale in i18n.LOCALES:
        response.set_cookie(
            i18n.COOKIE,
            locale,
            max_age=365 * 86400,
            path=PREFIX,
            httponly=True,
            samesite="lax",
            secure=secure(request),
        )
    return response
