"""The help centre's articles: one per failure code customers may be shown, written from
the catalogue and its customer messages (failures/), so a new code has its article the
day it is catalogued; the merchant may add text to any of them (`customers.help_extra`,
a data file). A code customers are shown as another (a fraud block) has no article of
its own: its link leads to the one it is shown as.

Articles are grouped by what the customer can do, from the code's catalogue category,
and searched in both languages at once: words for alphabetic scripts, character bigrams
for Chinese (no dictionary segmenter needed: a bigram index finds a two-character word
anywhere, which is how most Chinese search engines without a dictionary work)."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from paymend.datafiles import DataFileError, line_of, read_yaml, validate_model
from paymend.failures.classify import Classifier
from paymend.failures.messages import CustomerMessage

# what the customer can do, in the order the help centre lists them
GROUPS = ("another_card", "top_up", "contact_bank", "verify", "wait")
# catalogue category -> group (every category of failures/catalogue.yaml; a test checks)
GROUP_OF = {
    "card": "another_card",
    "decline": "another_card",
    "funds": "top_up",
    "limits": "top_up",
    "bank": "contact_bank",
    "account": "contact_bank",
    "risk": "another_card",
    "card_details": "verify",
    "authentication": "verify",
    "customer": "verify",
    "timeout": "wait",
    "network": "wait",
    "provider": "wait",
    "request": "wait",
    "credentials": "wait",
    "throttling": "wait",
    "configuration": "wait",
    "duplicate": "wait",
    "order": "wait",
    "refund": "wait",
}


class ExtraFile(BaseModel):
    """`help_extra`: the merchant's own words per article, per locale."""

    model_config = ConfigDict(extra="forbid")

    version: int = Field(1, ge=1, le=1)
    articles: dict[str, dict[str, str]] = Field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Article:
    code: str
    group: str
    texts: dict[str, CustomerMessage]  # locale -> the code's message
    extra: dict[str, str] = field(default_factory=dict)  # locale -> the merchant's text

    def text(self, locale: str) -> CustomerMessage:
        return self.texts.get(locale) or self.texts["en"]

    def hint(self, locale: str) -> str:
        """The first sentence of its text: what tells apart articles of one title (the
        technical failures all read "your payment did not go through")."""
        detail = self.text(locale).detail
        cut = min((i for i in (detail.find(". "), detail.find("。")) if i >= 0), default=-1)
        return detail[: cut + 1] if cut >= 0 else detail


_WORD = re.compile(r"[^\W\d_]+|\d+")
_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")


def terms(text: str) -> list[str]:
    """Search terms: lower-cased words, and the bigrams of every run of Han characters
    (a lone character stands for itself)."""
    found: list[str] = []
    for run in _HAN.findall(text):
        found += [run] if len(run) == 1 else [run[i : i + 2] for i in range(len(run) - 1)]
    for word in _WORD.findall(_HAN.sub(" ", text).lower()):
        found.append(word)
    return found


class HelpCentre:
    """Every article, in catalogue order, and their search index."""

    def __init__(self, articles: list[Article]) -> None:
        self.articles = {a.code: a for a in articles}
        self._index: dict[str, Counter[str]] = {}
        for a in articles:
            words = [a.code.replace("_", " ")]
            for msg in a.texts.values():
                words += [msg.title, msg.detail, *msg.suggestions]
            words += list(a.extra.values())
            self._index[a.code] = Counter(terms(" ".join(words)))

    def grouped(self) -> list[tuple[str, list[Article]]]:
        return [(g, [a for a in self.articles.values() if a.group == g]) for g in GROUPS]

    def shared_titles(self, locale: str) -> set[str]:
        """Titles more than one article has in `locale` (the index adds their hint)."""
        seen = Counter(a.text(locale).title for a in self.articles.values())
        return {title for title, n in seen.items() if n > 1}

    def search(self, query: str, limit: int = 20) -> list[Article]:
        """Articles holding every term of `query`, most mentions first."""
        wanted = set(terms(query))
        if not wanted:
            return []
        scored = [
            (sum(index[t] for t in wanted), code)
            for code, index in self._index.items()
            if all(t in index for t in wanted)
        ]
        scored.sort(key=lambda s: -s[0])  # stable: catalogue order on ties
        return [self.articles[code] for _, code in scored[:limit]]


def build_help(classifier: Classifier, extra_path: Path | None = None) -> HelpCentre:
    """The articles of every public code, with the merchant's text from `extra_path`;
    DataFileError names the line of a code it does not know."""
    messages = classifier.messages
    extra = _load_extra(extra_path, messages.locales, classifier) if extra_path else {}
    articles = []
    for code, entry in classifier.catalogue.entries.items():
        if entry.shown_as is not None:
            continue
        texts = {loc: messages.render(code, loc, support_contact=None) for loc in messages.locales}
        articles.append(Article(code, GROUP_OF[entry.category], texts, extra.get(code, {})))
    return HelpCentre(articles)


def _load_extra(
    path: Path, locales: list[str], classifier: Classifier
) -> dict[str, dict[str, str]]:
    data, node = read_yaml(path)
    parsed = validate_model(ExtraFile, data, node, str(path))
    for code, texts in parsed.articles.items():
        entry = classifier.catalogue.entries.get(code)
        if entry is None or entry.shown_as is not None:
            raise DataFileError(
                str(path),
                line_of(node, ["articles", code]),
                f"articles.{code}: not a code customers are shown (see /help)",
            )
        for locale, text in texts.items():
            if locale not in locales or not text.strip() or len(text) > 2000:
                raise DataFileError(
                    str(path),
                    line_of(node, ["articles", code, locale]),
                    f"articles.{code}.{locale}: a text of 1 to 2000 characters in one of "
                    f"{', '.join(locales)}",
                )
    return parsed.articles
