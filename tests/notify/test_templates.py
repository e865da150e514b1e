"""Notice texts: in the customer's language, money and dates in their locale, and a
template that cannot render refuses to load with its file and line."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from paymend.datafiles import DataFileError
from paymend.notify.templates import HERE, Facts, Templates, money

WHEN = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def facts(locale: str) -> Facts:
    return Facts(
        "payment_failed",
        locale,
        123456,
        "CNY",
        "o-42",
        "余额不足" if locale == "zh-CN" else "Not enough funds on this card",
        "detail <b>",
        ("请更换其他银行卡或支付方式",) if locale == "zh-CN" else ("Pay with another card",),
        "https://shop.example/p/pay_1",
        "400-800-1234",
        WHEN,
    )


def test_money_is_written_as_the_customers_locale_writes_it() -> None:
    assert money(123456, "CNY", "zh-CN") == "¥1,234.56"
    assert money(123456, "CNY", "en") == "CN¥1,234.56"
    assert money(500, "JPY", "en") == "¥500"  # no minor unit


def test_a_notice_reads_in_the_customers_language_with_next_step_and_link() -> None:
    templates = Templates()
    zh = templates.render(facts("zh-CN"))
    assert zh.locale == "zh-CN"
    assert zh.sms.startswith("余额不足：订单 o-42，¥1,234.56。")
    assert "请更换其他银行卡或支付方式。" in zh.sms
    assert "https://shop.example/p/pay_1" in zh.sms and len(zh.sms) <= 300
    assert zh.params["step"] == "请更换其他银行卡或支付方式"
    en = templates.render(facts("en-GB"))  # negotiated to the shipped language
    assert en.locale == "en" and "Pay with another card" in en.text
    assert "Contact 400-800-1234" in en.text and "Dec" in en.text
    assert "detail &lt;b&gt;" in en.html and "detail <b>" in en.text  # HTML escaped


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("{{ title }}\n{% if next_steps %}\n{{ oops }\n", 3, "unexpected"),
        ("{{ title }}\n\n{{ card_number }}\n", 3, "unknown variable 'card_number'"),
    ],
)
def test_a_broken_template_refuses_to_load_with_file_and_line(
    tmp_path: Path, text: str, line: int, words: str
) -> None:
    folder = tmp_path / "templates"
    shutil.copytree(HERE, folder)
    (folder / "en" / "sms.j2").write_text(text, encoding="utf-8")
    with pytest.raises(DataFileError) as caught:
        Templates(folder)
    assert caught.value.line == line and words in caught.value.message
    assert caught.value.path.endswith("en/sms.j2")
