"""Customer messages: complete, honest, never a loop, never a hint of fraud suspicion."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from paymend.datafiles import DataFileError
from paymend.domain.failure import Action
from paymend.failures.catalogue import load_catalogue
from paymend.failures.classify import default_classifier
from paymend.failures.messages import HERE, load_messages

C = default_classifier()
CODES = C.catalogue.codes()
SECRET = {
    "en": re.compile(r"fraud|stolen|lost|risk|suspicious", re.I),
    "zh-CN": re.compile("欺诈|盗|丢失|风险|可疑"),
}
RETRY_WORDS = {"en": re.compile(r"try again|retry", re.I), "zh-CN": re.compile("重试|再试")}


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
@pytest.mark.parametrize("code", CODES)
def test_every_code_has_a_concrete_message_in_every_locale(locale: str, code: str) -> None:
    msg = C.messages.render(code, locale, support_contact="400-800-1234")
    assert msg.locale == locale and msg.code == C.messages.public_code(code)
    assert msg.title and msg.detail and 1 <= len(msg.suggestions) <= 3
    assert "{" not in msg.detail + "".join(msg.suggestions)  # placeholders filled
    assert msg.title.lower() not in ("payment failed", "支付失败")


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
@pytest.mark.parametrize("code", ["suspected_fraud", "lost_or_stolen_card"])
def test_fraud_suspicion_is_never_revealed(locale: str, code: str) -> None:
    msg = C.messages.render(code, locale, support_contact="x")
    text = " ".join((msg.title, msg.detail, *msg.suggestions))
    assert not SECRET[locale].search(text)
    assert msg.suggestions  # and the customer still learns what to do


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
@pytest.mark.parametrize("code", [c for c in CODES if C.catalogue[c].action is Action.DO_NOT_RETRY])
def test_codes_that_cannot_succeed_never_say_try_again(locale: str, code: str) -> None:
    msg = C.messages.render(code, locale, support_contact="x")
    assert not RETRY_WORDS[locale].search(" ".join((msg.detail, *msg.suggestions)))


def test_a_repeat_failure_changes_the_advice() -> None:
    first = C.messages.render("insufficient_funds", "en", support_contact="help@shop.cn")
    second = C.messages.render("insufficient_funds", "en", support_contact="help@shop.cn", repeat=1)
    third = C.messages.render("insufficient_funds", "en", support_contact="help@shop.cn", repeat=2)
    assert first.suggestions != second.suggestions != third.suggestions
    assert "different card or payment method" in second.suggestions[0]
    assert "help@shop.cn" in third.suggestions[0]


def test_the_shop_contact_or_a_fallback_is_quoted() -> None:
    with_contact = C.messages.render("provider_timeout", "zh-CN", support_contact="400-800-1234")
    assert any("400-800-1234" in s for s in with_contact.suggestions)
    without = C.messages.render("provider_timeout", "zh-CN", support_contact=None)
    assert any("商家客服" in s for s in without.suggestions)


@pytest.mark.parametrize(
    ("header", "locale"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh-CN"),
        ("zh-TW", "zh-CN"),
        ("fr-FR", "en"),
        ("en-US", "en"),
        ("de;q=0.9, zh;q=0.5", "zh-CN"),
        (None, "en"),
        ("", "en"),
    ],
)
def test_locale_negotiation(header: str | None, locale: str) -> None:
    assert C.messages.negotiate(header) == locale


def _copy_messages(tmp_path: Path) -> Path:
    folder = tmp_path / "messages"
    folder.mkdir()
    for f in HERE.glob("*.yaml"):
        (folder / f.name).write_text(f.read_text(encoding="utf-8"), encoding="utf-8")
    return folder


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (
            lambda t: t.replace("  expired_card:", "  expired_cards:", 1),
            "messages.expired_cards: unknown code",
        ),
        (lambda t: t.replace("locale: en", "locale: english", 1), "must be a language tag"),
        (lambda t: t.replace("{support_contact}", "{phone}", 1), "unknown placeholder {phone}"),
    ],
)
def test_broken_message_files_refuse_to_load(tmp_path: Path, edit, words: str) -> None:  # type: ignore[no-untyped-def]
    folder = _copy_messages(tmp_path)
    en = folder / "en.yaml"
    en.write_text(edit(en.read_text(encoding="utf-8")), encoding="utf-8")
    with pytest.raises(DataFileError) as info:
        load_messages(load_catalogue(), folder)
    assert words in str(info.value)
    assert str(info.value).startswith(f"{en}:")
    assert info.value.line is not None
