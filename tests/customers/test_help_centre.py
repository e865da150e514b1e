"""The help centre: an article for every code customers may be shown, grouped by what
they can do, searchable in English and Chinese, the FAQ from a data file, the
merchant's own words, and "did this help?"."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from paymend.customers.articles import GROUP_OF, GROUPS, build_help, terms
from paymend.customers.faq import load_faq
from paymend.datafiles import DataFileError
from paymend.failures.classify import default_classifier
from paymend.store import feedback as feedback_repo
from tests.customers.conftest import Shop
from tests.helpers import NOW


def test_every_code_customers_may_be_shown_has_an_article_in_its_group(shop: Shop) -> None:
    catalogue = default_classifier().catalogue
    public = {c for c, e in catalogue.entries.items() if e.shown_as is None}
    assert set(GROUP_OF) == set(catalogue.entries[c].category for c in catalogue.codes()) | {"risk"}
    with shop.browser() as browser:
        index = browser.get("/help", params={"lang": "en"}).text
        zh = browser.get("/help", headers={"Accept-Language": "zh-CN,zh;q=0.9"}).text
    linked = set(re.findall(r'href="/help/([a-z_]+)\?lang=en"', index))
    assert linked - {"faq"} == public  # every one, and never a fraud code
    assert [g for g in GROUPS if f'data-group="{g}"' in index] == list(GROUPS)
    assert "Top up or pay a smaller amount" in index and "充值或减少支付金额" in zh
    assert index.index('data-group="top_up"') < index.index('href="/help/insufficient_funds')


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("expired", "expired_card"),
        ("余额", "insufficient_funds"),  # two characters of a longer Chinese sentence
        ("卡已过期", "expired_card"),
        ("INSUFFICIENT funds", "insufficient_funds"),
    ],
)
def test_search_finds_articles_in_either_language(shop: Shop, query: str, expected: str) -> None:
    with shop.browser() as browser:
        page = browser.get("/help", params={"q": query, "lang": "en"}).text
    results = page[page.index('id="results"') : page.index("</section>")]
    assert f'href="/help/{expected}?lang=en"' in results


def test_a_search_that_matches_nothing_says_so() -> None:
    help_ = build_help(default_classifier())
    assert help_.search("xyzzy") == [] and help_.search("   ") == []
    assert terms("银行卡余额 Top-up") == ["银行", "行卡", "卡余", "余额", "top", "up"]


def test_the_faq_page_shows_the_questions_in_the_readers_language(shop: Shop) -> None:
    with shop.browser() as browser:
        en = browser.get("/help/faq", params={"lang": "en"}).text
        zh = browser.get("/help/faq", params={"lang": "zh-CN"}).text
    assert 'id="charged-twice"' in en and "Was I charged twice?" in en
    assert "我被重复扣款了吗？" in zh


def test_a_broken_faq_file_is_refused_naming_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "faq.yaml"
    bad.write_text(
        "version: 1\nquestions:\n  - id: ok\n    question: {en: Q}\n    answer: {en: A}\n"
        "  - id: Bad Id\n    question: {en: Q}\n    answer: {fr: R}\n"
    )
    with pytest.raises(DataFileError) as refused:
        load_faq(bad)
    assert str(refused.value).startswith(f"{bad}:6: questions.1.id")
    bad.write_text(
        "version: 1\nquestions:\n  - id: ok\n    question: {en: Q}\n    answer: {fr: R}\n"
    )
    with pytest.raises(DataFileError, match=r"faq.yaml:5: questions.0.answer: .*unknown locale fr"):
        load_faq(bad)


def test_the_merchants_words_join_an_article_and_an_unknown_code_is_refused(
    tmp_path: Path,
) -> None:
    extra = tmp_path / "help.yaml"
    extra.write_text(
        "articles:\n  insufficient_funds:\n    en: Our store card has no limit.\n"
        "    zh-CN: 本店储值卡无限额。\n"
    )
    help_ = build_help(default_classifier(), extra)
    assert help_.articles["insufficient_funds"].extra["zh-CN"] == "本店储值卡无限额。"
    assert help_.search("储值卡")[0].code == "insufficient_funds"
    extra.write_text("articles:\n  insufficient_funds: {en: fine}\n  suspected_fraud: {en: nope}\n")
    with pytest.raises(DataFileError, match=r"help.yaml:3: articles.suspected_fraud: not a code"):
        build_help(default_classifier(), extra)


def test_did_this_help_is_counted_for_the_article(shop: Shop) -> None:
    with shop.browser() as browser:
        article = browser.get("/help/insufficient_funds", params={"lang": "zh-CN"}).text
        assert "这篇文章对您有帮助吗？" in article
        sent = browser.post(
            "/help/insufficient_funds/feedback?lang=zh-CN",
            data={"helpful": "no", "text": "我的手机 13812345678"},
        )
        thanks = browser.get(sent.headers["location"]).text
        empty = browser.post("/help/insufficient_funds/feedback?lang=en", data={"text": " "})
    assert sent.status_code == 303 and "感谢您的反馈" in thanks
    assert empty.status_code == 400 and "give a rating" in empty.text
    rows = shop.server.runtime.store.run_sync(
        lambda c: feedback_repo.since(c, NOW, shop.clock.now() + timedelta(seconds=1))
    )
    said = [r for r in rows if r["source"] == "help"]
    assert len(said) == 1
    assert said[0]["helpful"] is False and said[0]["failure_code"] == "insufficient_funds"
    assert said[0]["text"] == "我的手机 ***5678" and said[0]["payment_id"] is None


def test_config_check_names_the_line_of_a_faq_mistake(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from paymend.cli import main

    (tmp_path / "faq.yaml").write_text("version: 1\nquestions:\n  - id: ok\n    question: {}\n")
    path = tmp_path / "paymend.yaml"
    path.write_text(
        "providers:\n  sim_a:\n    type: simulator\n    methods: [card]\n"
        "routing: [sim_a]\ncustomers:\n  faq: faq.yaml\n"
    )
    result = CliRunner().invoke(main, ["config", "check", str(path)])
    assert result.exit_code == 1
    assert f"{tmp_path / 'faq.yaml'}:4: questions.0.question" in result.output
