"""Notice texts per locale: Jinja2 templates, money and dates formatted by Babel.

Templates live in `templates/<locale>/` (`sms.j2`, `email.txt.j2`, `email.html.j2`, and
`subject.j2`), all loaded and checked when paymend starts: one that does not parse, or
names a variable the renderer does not give (StrictUndefined would only fail at send
time, on a customer), refuses to load and names its file and line. The engine fills in
the facts (the failure catalogue's words and next steps, already shown as the public
code, so a fraud reason never reaches a template).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from babel.dates import format_datetime
from babel.numbers import format_currency, get_currency_precision
from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateSyntaxError,
    meta,
    select_autoescape,
)

from paymend.datafiles import DataFileError

HERE = Path(__file__).parent / "templates"
PARTS = ("sms.j2", "subject.j2", "email.txt.j2", "email.html.j2")
VARIABLES = frozenset(
    {"kind", "amount", "order_id", "title", "detail", "next_steps", "status_url", "support", "when"}
)
SMS_MAX = 300  # characters: a few concatenated SMS parts, well inside providers' limits


@dataclass(frozen=True, slots=True)
class Facts:
    """What a notice says, before it is put in words of a locale."""

    kind: str
    locale: str
    amount_minor: int
    currency: str
    order_id: str
    title: str  # the catalogue's or the status's title, in the locale
    detail: str
    next_steps: tuple[str, ...]
    status_url: str
    support: str
    when: datetime


@dataclass(frozen=True, slots=True)
class Rendered:
    locale: str
    sms: str
    subject: str
    text: str
    html: str
    params: dict[str, str]  # an SMS provider template's parameters


def money(minor: int, currency: str, locale: str) -> str:
    """`minor` units of `currency` as the customer's locale writes money."""
    exponent = get_currency_precision(currency)
    return format_currency(Decimal(minor).scaleb(-exponent), currency, locale=_babel(locale))


class Templates:
    def __init__(self, folder: Path = HERE) -> None:
        self.folder = folder
        self.env = Environment(
            loader=FileSystemLoader(str(folder)),
            undefined=StrictUndefined,
            # HTML parts escape what they are given; text and SMS parts are plain text
            autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )
        self.locales = sorted(p.name for p in folder.iterdir() if p.is_dir())
        for locale in self.locales:
            for part in PARTS:
                self._check(f"{locale}/{part}")

    def _check(self, name: str) -> None:
        path = self.folder / name
        try:
            source = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise DataFileError(str(path), None, f"cannot read: {exc.strerror}") from exc
        try:
            tree = self.env.parse(source, name, str(path))
            self.env.get_template(name)
        except TemplateSyntaxError as exc:
            raise DataFileError(str(path), exc.lineno, exc.message or "syntax error") from exc
        unknown = meta.find_undeclared_variables(tree) - VARIABLES
        if unknown:
            first = sorted(unknown)[0]
            raise DataFileError(
                str(path),
                _line_of(source, first),
                f"unknown variable '{first}' (known: {', '.join(sorted(VARIABLES))})",
            )

    def locale_for(self, wanted: str | None) -> str:
        if wanted in self.locales:
            return wanted
        lang = (wanted or "").split("-")[0].lower()
        return next((x for x in self.locales if x.split("-")[0] == lang), "en")

    def render(self, facts: Facts) -> Rendered:
        locale = self.locale_for(facts.locale)
        amount = money(facts.amount_minor, facts.currency, locale)
        values = {
            "kind": facts.kind,
            "amount": amount,
            "order_id": facts.order_id,
            "title": facts.title,
            "detail": facts.detail,
            "next_steps": list(facts.next_steps),
            "status_url": facts.status_url,
            "support": facts.support,
            "when": format_datetime(facts.when, "medium", locale=_babel(locale)),
        }
        out = {part: self.env.get_template(f"{locale}/{part}").render(values) for part in PARTS}
        sms = " ".join(out["sms.j2"].split())[:SMS_MAX]
        step = facts.next_steps[0] if facts.next_steps else facts.support
        return Rendered(
            locale,
            sms,
            " ".join(out["subject.j2"].split()),
            out["email.txt.j2"].strip() + "\n",
            out["email.html.j2"],
            # Aliyun and Tencent cap a template variable's length: short values only
            {"order": facts.order_id[:32], "amount": amount, "step": step[:35]}
            | {"link": facts.status_url},
        )


def _babel(locale: str) -> str:
    return locale.replace("-", "_")


def _line_of(source: str, name: str) -> int | None:
    pattern = re.compile(rf"\b{re.escape(name)}\b")
    for number, line in enumerate(source.splitlines(), 1):
        if pattern.search(line) and ("{{" in line or "{%" in line):
            return number
    return None
