"""Customer messages per locale (messages/*.yaml), validated against the catalogue.

Every unified code has a message in every shipped locale; placeholders are limited to
the ones the renderer fills; a repeat failure escalates the advice instead of looping.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from paymend.datafiles import DataFileError, line_of, read_yaml, validate_model
from paymend.failures.catalogue import Catalogue

HERE = Path(__file__).parent / "messages"
DEFAULT_LOCALE = "en"
PLACEHOLDERS = frozenset({"support_contact", "method"})
_LOCALE_RE = re.compile(r"^[a-z]{2,3}(-[A-Z]{2}|-[A-Z][a-z]{3})?$")


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=80)
    body: str = Field(min_length=1, max_length=300)
    actions: list[str] = Field(min_length=1, max_length=3)


class Escalation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    another_method: str = Field(min_length=1)
    contact_support: str = Field(min_length=1)


class MessageFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    locale: str
    support_fallback: str = Field(min_length=1)  # when the shop set no support contact
    messages: dict[str, Message]
    escalation: Escalation


@dataclass(frozen=True, slots=True)
class CustomerMessage:
    """A message as the customer reads it: placeholders filled, in one locale."""

    locale: str
    code: str
    title: str
    detail: str
    suggestions: tuple[str, ...]


class Messages:
    def __init__(self, files: dict[str, MessageFile]) -> None:
        self.files = files

    @property
    def locales(self) -> list[str]:
        return sorted(self.files)

    def negotiate(self, *wanted: str | None) -> str:
        """The first shipped locale matching a wanted one (exactly, then by language)."""
        for raw in wanted:
            for tag in _accept_language(raw):
                if tag in self.files:
                    return tag
                lang = tag.split("-")[0].lower()
                for locale in self.locales:
                    if locale.split("-")[0] == lang:
                        return locale
        return DEFAULT_LOCALE

    def render(
        self,
        code: str,
        locale: str,
        *,
        support_contact: str | None,
        method: str = "",
        repeat: int = 0,
    ) -> CustomerMessage:
        """`repeat`: how often this customer already failed for this cause recently."""
        file = self.files.get(locale) or self.files[DEFAULT_LOCALE]
        msg = file.messages.get(code) or file.messages["default"]
        values = {"support_contact": support_contact or file.support_fallback, "method": method}
        actions = [a.format(**values) for a in msg.actions]
        if repeat >= 2:
            actions = [file.escalation.contact_support.format(**values), *actions[:1]]
        elif repeat == 1:
            actions = [file.escalation.another_method.format(**values), *actions[:2]]
        return CustomerMessage(
            file.locale,
            code,
            msg.title.format(**values),
            msg.body.format(**values),
            tuple(actions),
        )


def _accept_language(value: str | None) -> list[str]:
    """Tags of an Accept-Language header (or a plain tag) in preference order."""
    if not value:
        return []
    tags: list[tuple[float, int, str]] = []
    for i, part in enumerate(value.split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if tag and tag != "*":
            lang, _, region = tag.replace("_", "-").partition("-")
            tags.append((-q, i, f"{lang.lower()}-{region.upper()}" if region else lang.lower()))
    return [t for _, _, t in sorted(tags)]


def load_messages(catalogue: Catalogue, folder: Path | None = None) -> Messages:
    files: dict[str, MessageFile] = {}
    required = set(catalogue.codes()) | {"default"}
    for path in sorted((folder or HERE).glob("*.yaml")):
        data, node = read_yaml(path)
        parsed = validate_model(MessageFile, data, node, str(path))
        if not _LOCALE_RE.match(parsed.locale) or parsed.locale != path.stem:
            raise DataFileError(
                str(path),
                line_of(node, ["locale"]),
                f"locale: '{parsed.locale}' must be a language tag equal to the file name "
                f"('{path.stem}')",
            )
        for code, msg in parsed.messages.items():
            if code not in required:
                raise DataFileError(
                    str(path), line_of(node, ["messages", code]), f"messages.{code}: unknown code"
                )
            for text in (msg.title, msg.body, *msg.actions):
                _check_placeholders(text, str(path), line_of(node, ["messages", code]))
        for text in (parsed.escalation.another_method, parsed.escalation.contact_support):
            _check_placeholders(text, str(path), line_of(node, ["escalation"]))
        missing = sorted(required - set(parsed.messages))
        if missing:
            raise DataFileError(
                str(path), line_of(node, ["messages"]), f"messages: missing {', '.join(missing)}"
            )
        files[parsed.locale] = parsed
    if DEFAULT_LOCALE not in files:
        raise DataFileError(str(folder or HERE), None, f"no messages for '{DEFAULT_LOCALE}'")
    return Messages(files)


def _check_placeholders(text: str, path: str, line: int | None) -> None:
    try:
        names = {f for _, f, _, _ in string.Formatter().parse(text) if f is not None}
    except ValueError as exc:
        raise DataFileError(path, line, f"broken placeholder in '{text}': {exc}") from None
    unknown = names - PLACEHOLDERS
    if unknown:
        raise DataFileError(
            path, line, f"unknown placeholder {{{', '.join(sorted(unknown))}}} in '{text}'"
        )
