"""Customer messages per locale (messages/*.yaml), validated against the catalogue.

Two kinds of text: one per payment status (`statuses`: what a customer reads while the
payment is processing, held, waiting for 3-D Secure, or once it succeeded, was canceled
or refunded) and one per unified failure code (`messages`: what they read once it
failed). Every status and every code the customer can be shown has a text in every
shipped locale; a code the catalogue shows as another (`shown_as`, e.g. a fraud block
shown as a plain decline) has none, so its name can never leak. Placeholders are limited
to the ones the renderer fills. A repeat failure escalates the advice instead of
looping, and drops every suggestion marked `retry`.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from paymend.datafiles import DataFileError, line_of, read_yaml, validate_model
from paymend.failures.catalogue import Catalogue

HERE = Path(__file__).parent / "messages"
DEFAULT_LOCALE = "en"
PLACEHOLDERS = frozenset({"support_contact", "method"})
_LOCALE_RE = re.compile(r"^[a-z]{2,3}(-[A-Z]{2}|-[A-Z][a-z]{3})?$")


def _text_or_mapping(value: Any) -> Any:
    return {"text": value} if isinstance(value, str) else value


class Suggestion(BaseModel):
    """One thing the customer can do. `retry`: it repeats what just failed (pay again,
    try again later, re-enter the PIN); an escalation never offers it again."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=200)
    retry: bool = False


# a suggestion is written as its text, or as {text: ..., retry: true}
SuggestionItem = Annotated[Suggestion, BeforeValidator(_text_or_mapping)]


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=80)
    body: str = Field(min_length=1, max_length=300)
    actions: list[SuggestionItem] = Field(min_length=1, max_length=3)


class StatusMessages(BaseModel):
    """What the customer reads for a payment that has not failed (a failed one reads
    its failure's message). Every field is required: no status goes without a text."""

    model_config = ConfigDict(extra="forbid")

    processing: Message
    held: Message
    requires_action: Message
    succeeded: Message
    canceled: Message
    partially_refunded: Message
    refunded: Message


class Escalation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    another_method: str = Field(min_length=1)
    contact_support: str = Field(min_length=1)


class MessageFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    locale: str
    support_fallback: str = Field(min_length=1)  # when the shop set no support contact
    statuses: StatusMessages
    messages: dict[str, Message]
    escalation: Escalation


@dataclass(frozen=True, slots=True)
class CustomerMessage:
    """A message as the customer reads it: placeholders filled, in one locale. `code` is
    the failure code whose text it is (the public one: `generic_decline` for a fraud
    block), or the payment status for a status message."""

    locale: str
    code: str
    title: str
    detail: str
    suggestions: tuple[str, ...]


class Messages:
    def __init__(self, files: dict[str, MessageFile], shown_as: dict[str, str]) -> None:
        self.files = files
        self.shown_as = shown_as  # failure code -> the code customers are shown instead

    def public_code(self, code: str) -> str:
        """The code a customer may see for `code`: its own, or what the catalogue shows
        it as (a fraud or lost-card block reads, and links, as a generic decline)."""
        return self.shown_as.get(code, code)

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
        """The failure `code`'s text. `repeat`: how often this customer already failed
        for this cause recently; from the first repeat on, the advice escalates (another
        method, then the shop's support) and no retry is suggested again."""
        file = self.files.get(locale) or self.files[DEFAULT_LOCALE]
        code = self.public_code(code)
        msg = file.messages.get(code) or file.messages["default"]
        values = {"support_contact": support_contact or file.support_fallback, "method": method}
        actions = [a.text.format(**values) for a in msg.actions if not (repeat and a.retry)]
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

    def render_status(
        self, status: str, locale: str, *, support_contact: str | None, method: str = ""
    ) -> CustomerMessage:
        """The text of a payment in `status` (any status but `failed`, whose text is its
        failure's: `render`)."""
        file = self.files.get(locale) or self.files[DEFAULT_LOCALE]
        msg: Message = getattr(file.statuses, status)
        values = {"support_contact": support_contact or file.support_fallback, "method": method}
        return CustomerMessage(
            file.locale,
            status,
            msg.title.format(**values),
            msg.body.format(**values),
            tuple(a.text.format(**values) for a in msg.actions),
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
    shown_as = {c: e.shown_as for c, e in catalogue.entries.items() if e.shown_as is not None}
    required = (set(catalogue.codes()) - set(shown_as)) | {"default"}
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
            if code in shown_as:
                raise DataFileError(
                    str(path),
                    line_of(node, ["messages", code]),
                    f"messages.{code}: customers are shown '{shown_as[code]}' for this code "
                    "(catalogue shown_as); a text of its own would never be read",
                )
            if code not in required:
                raise DataFileError(
                    str(path), line_of(node, ["messages", code]), f"messages.{code}: unknown code"
                )
            for text in (msg.title, msg.body, *(a.text for a in msg.actions)):
                _check_placeholders(text, str(path), line_of(node, ["messages", code]))
        for status, msg in parsed.statuses:
            for text in (msg.title, msg.body, *(a.text for a in msg.actions)):
                _check_placeholders(text, str(path), line_of(node, ["statuses", status]))
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
    return Messages(files, shown_as)


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
