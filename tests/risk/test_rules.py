"""The rules file: the shipped one loads, and every kind of mistake is refused on load
with its file and line, before any payment meets it."""

from __future__ import annotations

from pathlib import Path

import pytest

from paymend.datafiles import DataFileError
from paymend.risk.assess import complete, evaluate
from paymend.risk.features import FEATURES
from paymend.risk.model import Verdict
from paymend.risk.rules import SHIPPED_RULES, load

GOOD = """\
version: "t1"
rules:
  - name: big
    action: review
    when: amount_major > 100
"""


def refused(text: str, tmp_path: Path) -> DataFileError:
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataFileError) as caught:
        load(path)
    assert caught.value.path == str(path)
    return caught.value


def test_the_shipped_rules_load_and_allow_a_plain_payment() -> None:
    rules = load(SHIPPED_RULES)
    assert rules.version and len(rules.rules) >= 5
    plain = complete({"amount": 1999, "amount_major": 19.99, "currency": "CNY", "method": "card"})
    assert evaluate(plain, rules).verdict is Verdict.ALLOW


@pytest.mark.parametrize(
    ("when", "says"),
    [
        ("amount_major >", "not a valid expression"),
        ("amount_majr > 100", "unknown feature 'amount_majr'"),
        ('amount_major > "lots"', "another type"),
        ("amount_major + 1", "yes/no question"),
        ("currency + 1 > 2", "another type"),
        ("amount > inf - inf", "arithmetic that cannot be done"),
        ("amount + 9e999999 + 9e999999 > 0", "arithmetic that cannot be done"),
    ],
)
def test_a_bad_expression_is_refused_with_its_line(when: str, says: str, tmp_path: Path) -> None:
    text = GOOD + f"  - name: second\n    action: block\n    when: '{when}'\n"
    error = refused(text, tmp_path)
    assert error.line == 8, str(error)
    assert says in error.message and "second" in error.message


def test_an_unknown_action_names_its_line(tmp_path: Path) -> None:
    error = refused(GOOD.replace("action: review", "action: deny"), tmp_path)
    assert error.line == 4 and "rules.0.action" in error.message


def test_an_unknown_key_and_a_repeated_name_are_refused(tmp_path: Path) -> None:
    error = refused(GOOD + "    severity: high\n", tmp_path)
    assert error.line == 6 and "unknown key" in error.message
    twice = GOOD + "  - name: big\n    action: block\n    when: amount > 1\n"
    error = refused(twice, tmp_path)
    assert error.line == 6 and "already the name" in error.message


def test_a_file_without_a_version_is_refused(tmp_path: Path) -> None:
    error = refused(GOOD.replace('version: "t1"\n', ""), tmp_path)
    assert "version" in error.message


def test_every_feature_can_be_used_in_a_rule(tmp_path: Path) -> None:
    zero = {"number": "{f} >= 0", "text": '{f} == ""', "flag": "not {f}"}
    lines = ['version: "all"', "rules:"]
    for i, (name, kind) in enumerate(FEATURES.items()):
        when = zero[kind.value].format(f=name)
        lines += [
            f"  - name: r{i}",
            "    action: review",
            "    shadow: true",
            f"    when: '{when}'",
        ]
    path = tmp_path / "all.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rules = load(path)
    fired = rules.fire(complete({}))
    assert len(fired) == len(FEATURES) and all(f.shadow for f in fired)


def test_the_examples_of_the_docs_load(tmp_path: Path) -> None:
    """Every expression docs/risk.md offers an analyst to copy is a valid rule."""
    docs = (Path(__file__).parents[2] / "docs" / "risk.md").read_text(encoding="utf-8")
    block = docs.split("### The language, by example", 1)[1].split("```")[1]
    examples = [line.split("#", 1)[0].strip() for line in block.splitlines()]
    examples = [e for e in examples if e]
    assert len(examples) >= 10
    lines = ['version: "docs"', "rules:"]
    for i, when in enumerate(examples):
        lines += [f"  - name: example_{i}", "    action: review", f"    when: '{when}'"]
    path = tmp_path / "docs.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert len(load(path).rules) == len(examples)
    shipped = docs.split("## The rules file", 1)[1].split("```yaml")[1].split("```")[0]
    assert load(tmp_path / "shown.yaml", shipped).version == "2026-12-01.1"


def test_a_rule_that_fails_on_one_payment_does_not_stop_the_others(tmp_path: Path) -> None:
    text = GOOD + (
        "  - name: ratio\n    action: block\n"
        "    when: amount_major / (customer_successes - 1) > 10  # zero when one success\n"
        "  - name: also_big\n    action: review\n    when: |\n      amount_major > 50\n"
        '      and currency == "CNY"\n'
    )
    path = tmp_path / "r.yaml"
    path.write_text(text, encoding="utf-8")
    rules = load(path)
    payment = complete({"amount_major": 500.0, "currency": "CNY", "customer_successes": 1})
    assert [f.rule for f in rules.fire(payment)] == ["big", "also_big"]
    payment["customer_successes"] = 3
    assert [f.rule for f in rules.fire(payment)] == ["big", "ratio", "also_big"]


def test_the_runtime_refuses_a_bad_rules_file_and_can_run_without(
    tmp_path: Path, sqlite_url: str
) -> None:
    from paymend.config import PaymendConfig, Settings
    from paymend.engine.runtime import build_runtime
    from tests.api.conftest import CONFIG

    config = PaymendConfig.model_validate(CONFIG)
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("amount_major > 100", "amount_major > 'x'"), encoding="utf-8")
    with pytest.raises(DataFileError) as caught:
        build_runtime(Settings(database_url=sqlite_url, risk_rules=str(bad)), config)
    assert caught.value.line == 5
    off = build_runtime(Settings(database_url=sqlite_url, risk_rules="off"), config)
    try:
        assert off.service.risk is None
    finally:
        off.close()
    on = build_runtime(Settings(database_url=sqlite_url), config)
    try:
        assert on.service.risk is not None
        assert on.service.risk.live.version == load(SHIPPED_RULES).version
    finally:
        on.close()
