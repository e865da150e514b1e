"""What the customers' pages share: their templates, the reader's locale, the help
centre and FAQ loaded once per app, and the status links (domain/status_links.py) made
and opened with the deployment's link key.

No session, no cookie: a customer arrives from a link. Forms are read by the console's
form reader (console/web.py `read_form`: urlencoded, no card data, no control
characters); a signed link is the only thing that opens a payment."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from paymend.console.web import NO_STORE, runtime_of
from paymend.customers import i18n
from paymend.customers.articles import HelpCentre, build_help
from paymend.customers.faq import FaqFile, load_faq
from paymend.domain import status_links
from paymend.engine.feedback import REASONS
from paymend.engine.runtime import Runtime

HERE = Path(__file__).parent
# as the console's pages, never cached or framed; and a status link's token never leaves
# in a Referer when the customer follows "pay again" or the support link
HEADERS = {**NO_STORE, "Referrer-Policy": "no-referrer"}
TEMPLATES = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True, slots=True)
class Pages:
    """What the pages read and never change while the process runs."""

    help: HelpCentre
    faq: FaqFile
    link_key: bytes | None


def load_pages(runtime: Runtime) -> Pages:
    """Built when the app is: a broken FAQ or help file refuses to start, naming its
    file and line (DataFileError)."""
    conf = runtime.config.customers
    base = runtime.settings.config_path()
    key = runtime.settings.link_key
    return Pages(
        build_help(runtime.service.classifier, conf.path(base, conf.help_extra)),
        load_faq(conf.path(base, conf.faq)),
        key.get_secret_value().encode() if key else None,
    )


def pages_of(request: Request) -> Pages:
    pages: Pages = request.app.state.customer_pages
    return pages


def locale_of(request: Request) -> str:
    """`?lang=` (or `?locale=`, as help links say), else Accept-Language."""
    wanted = request.query_params.get("lang") or request.query_params.get("locale")
    return i18n.negotiate(wanted, request.headers.get("accept-language"))


def status_url(
    runtime: Runtime, base_url: str, payment_id: str, key: bytes | None, locale: str | None = None
) -> str | None:
    """The customer's link to `payment_id`'s page (in `locale` when we have it), or None
    without a link key."""
    if key is None:
        return None
    conf = runtime.config.customers
    expires = runtime.clock.now() + timedelta(seconds=conf.link_ttl)
    token = status_links.sign(key, payment_id, expires)
    lang = i18n.negotiate(locale, None) if locale else None
    return f"{(conf.public_url or base_url).rstrip('/')}/pay/{token}" + (
        f"?lang={lang}" if lang else ""
    )


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A page in the reader's language; `t(key, **values)` gives the words."""
    locale = context.pop("locale", None) or locale_of(request)

    def t(key: str, /, **values: object) -> str:
        return i18n.translate(locale, key, **values)

    page = TEMPLATES.get_template(template).render(
        t=t,
        locale=locale,
        locales=i18n.LOCALE_NAMES,
        path=request.url.path,
        reasons=REASONS,
        **context,
    )
    return HTMLResponse(page, status_code=status, headers=HEADERS)


__all__ = ["locale_of", "pages_of", "render", "runtime_of", "status_url"]
