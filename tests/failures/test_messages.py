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

CATALOGUE_DIR = HERE.parent

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


# -- statuses, shown_as, retry marks --------------------------------------------------------

STATUSES = [
    "processing",
    "held",
    "requires_action",
    "succeeded",
    "canceled",
    "partially_refunded",
    "refunded",
]
UNKNOWN_OUTCOMES = ["provider_timeout", "network_error", "provider_error", "unrecognized_response"]
CONFIRMING = {
    "en": re.compile(r"confirming|do not pay again", re.I),
    "zh-CN": re.compile("请勿重复支付"),
}
NOT_CHARGED = {"en": "Nothing was charged", "zh-CN": "未扣款"}
# what reads like "do it again" (and is not "do not pay again"): must be marked retry
LOOKS_RETRY = {
    "en": re.compile(r"(?<!not pay )(?<!order )again|retry|come back", re.I),
    "zh-CN": re.compile("再试|重新(?!下单)|稍后回到"),
}


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
@pytest.mark.parametrize("status", STATUSES)
def test_every_status_has_a_text_in_every_locale(locale: str, status: str) -> None:
    msg = C.messages.render_status(status, locale, support_contact=None)
    assert msg.locale == locale and msg.code == status
    assert msg.title and msg.detail and msg.suggestions
    assert "{" not in msg.title + msg.detail + "".join(msg.suggestions)


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
def test_confirming_is_said_while_processing_never_once_failed(locale: str) -> None:
    processing = C.messages.render_status("processing", locale, support_contact=None)
    assert CONFIRMING[locale].search(processing.detail)
    for code in UNKNOWN_OUTCOMES:
        failed = C.messages.render(code, locale, support_contact=None)
        text = " ".join((failed.title, failed.detail, *failed.suggestions))
        assert not CONFIRMING[locale].search(text), code
        assert NOT_CHARGED[locale] in failed.detail, code


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
def test_fraud_blocks_render_as_the_generic_decline(locale: str) -> None:
    generic = C.messages.render("generic_decline", locale, support_contact=None)
    for code in ("suspected_fraud", "lost_or_stolen_card"):
        assert C.messages.render(code, locale, support_contact=None) == generic
    risky = [c for c in CODES if C.catalogue[c].category == "risk" and c != "risk_declined"]
    assert risky and all(C.messages.public_code(c) == "generic_decline" for c in risky)
    # paymend's own risk block reads as a method that could not be used, never a rule
    assert C.messages.public_code("risk_declined") == "payment_method_unusable"
    text = C.messages.render("risk_declined", locale, support_contact=None)
    assert "risk" not in str(text).lower() and "rule" not in str(text).lower()


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
def test_every_suggestion_that_reads_as_a_retry_is_marked_so(locale: str) -> None:
    file = C.messages.files[locale]
    messages = [*file.messages.values(), *(m for _, m in file.statuses)]
    unmarked = [
        s.text
        for m in messages
        for s in m.actions
        if LOOKS_RETRY[locale].search(s.text) and not s.retry
    ]
    assert unmarked == []
    assert sum(s.retry for m in messages for s in m.actions) >= 10


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
@pytest.mark.parametrize("code", [c for c in CODES if C.messages.public_code(c) == c])
def test_an_escalation_never_offers_a_retry(locale: str, code: str) -> None:
    retries = {s.text for s in C.messages.files[locale].messages[code].actions if s.retry}
    for repeat in (1, 2, 5):
        msg = C.messages.render(code, locale, support_contact="x", repeat=repeat)
        assert not retries & set(msg.suggestions), (repeat, msg.suggestions)
        assert len(msg.suggestions) >= 1


def _edited(tmp_path: Path, name: str, old: str, new: str) -> Path:
    folder = _copy_messages(tmp_path)
    path = folder / name
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("name", "old", "new", "words"),
    [
        (
            "en.yaml",
            "  held:\n",
            "  pending:\n    title: a\n    body: b\n    actions: [c]\n  held:\n",
            "statuses.pending: unknown key",
        ),
        ("zh-CN.yaml", "  held:\n", "  hold:\n", "statuses.held: Field required"),
        (
            "en.yaml",
            "  generic_decline:\n",
            "  suspected_fraud:\n    title: a\n    body: b\n    actions: [c]\n  generic_decline:\n",
            "messages.suspected_fraud: customers are shown 'generic_decline'",
        ),
        (
            "en.yaml",
            '{text: "Pay again", retry: true}',
            '{text: "Pay again", retry: maybe}',
            "retry: Input should be a valid boolean",
        ),
        (
            "en.yaml",
            '      - "Do not pay again for now"\n',
            '      - "Do not pay {again} for now"\n',
            "unknown placeholder {again}",
        ),
    ],
)
def test_broken_statuses_and_marks_refuse_to_load(
    tmp_path: Path, name: str, old: str, new: str, words: str
) -> None:
    path = _edited(tmp_path, name, old, new)
    with pytest.raises(DataFileError) as info:
        load_messages(load_catalogue(), path.parent)
    assert words in str(info.value)
    assert str(info.value).startswith(f"{path}:") and info.value.line is not None


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        (
            "    shown_as: generic_decline\n",
            "",
            "codes.suspected_fraud: a risk block must be shown",
        ),
        (
            "    shown_as: generic_decline\n",
            "    shown_as: no_such_code\n",
            "codes.suspected_fraud.shown_as: 'no_such_code' must be a code",
        ),
    ],
)
def test_a_catalogue_that_would_name_a_fraud_block_refuses_to_load(
    tmp_path: Path, old: str, new: str, words: str
) -> None:
    text = (CATALOGUE_DIR / "catalogue.yaml").read_text(encoding="utf-8")
    path = tmp_path / "catalogue.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(DataFileError) as info:
        load_catalogue(path)
    assert words in str(info.value) and info.value.line is not None
