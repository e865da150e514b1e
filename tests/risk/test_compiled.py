"""The compiled rules answer what rule-engine answers: for the shipped rules, the
benchmark's 30 and generated expressions, over generated payments, each closure returns
what `Rule.matches` returns or raises what it raises; a payment with values of other
types, and a construct the compiler does not reproduce, go through rule-engine."""

from __future__ import annotations

import ast as python_ast
import random
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import rule_engine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from paymend.risk.compiled import Compiler
from paymend.risk.features import FEATURES, Kind
from paymend.risk.model import Verdict
from paymend.risk.rules import CONTEXT, SHIPPED_RULES, Rule, RuleSet, load

ROOT = Path(__file__).parents[2]
NUMBERS = sorted(n for n, k in FEATURES.items() if k is Kind.NUMBER)
TEXTS = sorted(n for n, k in FEATURES.items() if k is Kind.TEXT)
FLAGS = sorted(n for n, k in FEATURES.items() if k is Kind.FLAG)
CHECK = settings(
    max_examples=120,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def bench_rules() -> list[tuple[str, str, str]]:
    """bench/risk.py's EXTRA rules, read as a literal from its source (not imported:
    the benchmark pulls in the whole engine)."""
    tree = python_ast.parse((ROOT / "bench" / "risk.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, python_ast.Assign) and getattr(node.targets[0], "id", "") == "EXTRA":
            extra: list[tuple[str, str, str]] = python_ast.literal_eval(node.value)
            return extra
    raise AssertionError("bench/risk.py has no EXTRA")


def rules_of(extra: list[tuple[str, str, str]]) -> RuleSet:
    lines = [SHIPPED_RULES.read_text(encoding="utf-8")]
    for name, action, when in extra:
        lines += [f"  - name: {name}", f"    action: {action}", f"    when: '{when}'"]
    return load("rules.yaml", "\n".join(lines) + "\n")


BENCH = rules_of(bench_rules())


def outcome(test: Callable[[dict[str, Any]], bool], features: dict[str, Any]) -> tuple[Any, ...]:
    try:
        answer = test(features)
        return ("answer", type(answer).__name__, answer)
    except Exception as exc:  # noqa: BLE001 - compared: the same type and message
        return (type(exc).__name__, str(exc))


def reference(rules: RuleSet, features: dict[str, Any]) -> tuple[Any, ...]:
    """What `fire` answered before the rules were compiled: rule-engine for each rule."""

    def names(f: dict[str, Any]) -> list[str]:
        fired = []
        for rule in rules.rules:
            try:
                yes = rule.matches(f)
            except rule_engine.errors.EngineError:
                yes = False
            if yes:
                fired.append(rule.name)
        return fired

    return outcome(names, features)  # type: ignore[arg-type]


def fired(rules: RuleSet, features: dict[str, Any]) -> tuple[Any, ...]:
    return outcome(lambda f: [r.rule for r in rules.fire(f)], features)  # type: ignore[arg-type,return-value]


# -- payments ------------------------------------------------------------------------------

WORDS = ["", "CN", "SG", "cn", "CNY", "JPY", "alipay", "emu-7", "dev-emu-", "mailinator.com"]
numbers = st.one_of(
    st.integers(-3, 12),
    st.integers(-(2**53), 2**53),
    st.sampled_from([0, 0.0, -0.0, 0.1, 0.2, 0.3, 0.30000000000000004, 2.5, 1999.99, 1e16]),
    st.sampled_from([2**53, -(2**53), 10**15 + 1, 1e300, -1e300, 5e-324, 4000.0, 50000.0]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(min_value=-1000, max_value=100000, allow_nan=False, allow_infinity=False),
)
texts = st.one_of(st.sampled_from(WORDS), st.text(max_size=6))


def payment(pools: tuple[list[Any], list[Any], list[Any]]) -> dict[str, Any]:
    """Every feature a value of its kind, drawn from a few per kind (a hundred draws per
    example would cost more than the rules): features often share one, as equal ones do."""
    out: dict[str, Any] = {}
    for names, pool in zip((NUMBERS, TEXTS, FLAGS), pools, strict=True):
        out |= {name: pool[i % len(pool)] for i, name in enumerate(names)}
    return out


payments = st.tuples(
    st.lists(numbers, min_size=13, max_size=13),
    st.lists(texts, min_size=5, max_size=5),
    st.lists(st.booleans(), min_size=3, max_size=3),
).map(payment)


class Word(str):
    """A str subclass: rule-engine's `==` tells it from a str, so it is not compiled."""


ODD = [
    *(None, float("nan"), float("inf"), -float("inf"), True, "3", 1.5, 0),
    *(2**53 + 1, -(2**53) - 1, 99999999999999991611393, Word(""), Word("JPY"), Word("emu-1")),
]
READ = sorted({*BENCH.guard.numbers, *BENCH.guard.texts, *BENCH.guard.flags})
oddities = st.lists(st.tuples(st.sampled_from(READ), st.sampled_from(ODD)), max_size=3)


# -- expressions ---------------------------------------------------------------------------

NUMBER_LITERALS = [
    *("0", "1", "-1", "2", "3", "0.1", "0.2", "0.3", "2.5", "-0", "100", "1999.99", "0x10"),
    *("0.30000000000000001", "1e20", "1e23", "9007199254740993", "9007199254740992"),
    *("1e-400", "1e400", "inf", "-inf"),
]
REGEXES = ["^emu-", "emu", "^$", "[A-Z]{2}$", "a|b", "", "^CN"]


def text_literal(value: str) -> str:
    return f'"{value}"'


@cache
def number(depth: int) -> st.SearchStrategy[str]:
    leaf = st.one_of(st.sampled_from(NUMBERS), st.sampled_from(NUMBER_LITERALS))
    if depth == 0:
        return leaf
    n, b = number(depth - 1), boolean(depth - 1)
    return st.one_of(
        leaf,
        st.tuples(n, st.sampled_from(["+", "-", "*", "/", "//", "%"]), n).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        ),
        st.tuples(n, st.sampled_from(["0", "1", "2", "0.5", "-1"])).map(
            lambda t: f"({t[0]} ** {t[1]})"
        ),
        n.map(lambda x: f"-({x})"),
        st.tuples(b, n, n).map(lambda t: f"({t[0]} ? {t[1]} : {t[2]})"),
    )


@cache
def text(depth: int) -> st.SearchStrategy[str]:
    leaf = st.one_of(st.sampled_from(TEXTS), st.sampled_from(WORDS).map(text_literal))
    if depth == 0:
        return leaf
    t = text(depth - 1)
    return st.one_of(
        leaf,
        st.tuples(t, t).map(lambda p: f"({p[0]} + {p[1]})"),
        st.tuples(boolean(depth - 1), t, t).map(lambda p: f"({p[0]} ? {p[1]} : {p[2]})"),
    )


@cache
def boolean(depth: int) -> st.SearchStrategy[str]:
    leaf = st.one_of(st.sampled_from(FLAGS), st.sampled_from(["true", "false"]))
    if depth == 0:
        return leaf
    n, t, b = number(depth - 1), text(depth - 1), boolean(depth - 1)
    words = st.lists(st.sampled_from(WORDS).map(text_literal), max_size=3)
    literals = st.lists(st.sampled_from(NUMBER_LITERALS), max_size=3)
    anything = st.one_of(n, t, b, st.just("null"))

    def infix(left: Any, ops: list[str], right: Any) -> st.SearchStrategy[str]:
        return st.tuples(left, st.sampled_from(ops), right).map(lambda p: f"({p[0]} {p[1]} {p[2]})")

    compared = infix(n, ["==", "!=", "<", "<=", ">", ">="], n)
    return st.one_of(
        leaf,
        compared,
        compared,
        compared,
        infix(t, ["==", "!=", "<", "<=", ">", ">="], t),
        infix(b, ["==", "!=", "<", ">="], b),
        infix(anything, ["==", "!="], anything),  # across types: never equal
        infix(t, ["=~", "=~~", "!~", "!~~"], st.sampled_from(REGEXES).map(text_literal)),
        st.tuples(t, st.sampled_from(["in", "not in"]), words).map(
            lambda p: f"({p[0]} {p[1]} [{', '.join(p[2])}])"
        ),
        st.tuples(n, literals).map(lambda p: f"({p[0]} in [{', '.join(p[1])}])"),
        infix(t, ["in"], t),
        b.map(lambda x: f"not {x}"),
        infix(st.one_of(b, n, t), ["and", "or"], st.one_of(b, n, t)),
        st.tuples(b, b, b).map(lambda p: f"({p[0]} ? {p[1]} : {p[2]})"),
    )


def corpus(count: int, seed: int) -> list[str]:
    """Many more expressions than the property above draws, from a seeded generator of
    the same grammar: every operator meets every kind of payment value below."""
    r = random.Random(seed)

    def num(d: int) -> str:
        pick = r.randrange(8 if d else 2)
        if pick == 0:
            return r.choice(NUMBERS)
        if pick == 1:
            return r.choice(NUMBER_LITERALS)
        if pick <= 4:
            return f"({num(d - 1)} {r.choice(['+', '-', '*', '/', '//', '%'])} {num(d - 1)})"
        if pick == 5:
            return f"({num(d - 1)} ** {r.choice(['0', '1', '2', '0.5', '-1'])})"
        if pick == 6:
            return f"-({num(d - 1)})"
        return f"({boolean(d - 1)} ? {num(d - 1)} : {num(d - 1)})"

    def txt(d: int) -> str:
        pick = r.randrange(4 if d else 2)
        if pick == 0:
            return r.choice(TEXTS)
        if pick == 1:
            return text_literal(r.choice(WORDS))
        if pick == 2:
            return f"({txt(d - 1)} + {txt(d - 1)})"
        return f"({boolean(d - 1)} ? {txt(d - 1)} : {txt(d - 1)})"

    def boolean(d: int) -> str:
        pick = r.randrange(12 if d else 1)
        if pick == 0:
            return r.choice([*FLAGS, "true", "false"])
        if pick <= 3:
            return f"({num(d - 1)} {r.choice(['==', '!=', '<', '<=', '>', '>='])} {num(d - 1)})"
        if pick == 4:
            return f"({txt(d - 1)} {r.choice(['==', '!=', '<', '>='])} {txt(d - 1)})"
        if pick == 5:
            op = r.choice(["=~", "=~~", "!~", "!~~"])
            return f"({txt(d - 1)} {op} {text_literal(r.choice(REGEXES))})"
        if pick == 6:
            words = ", ".join(text_literal(w) for w in r.sample(WORDS, r.randrange(4)))
            return f"({txt(d - 1)} {r.choice(['in', 'not in'])} [{words}])"
        if pick == 7:
            return f"({num(d - 1)} in [{', '.join(r.sample(NUMBER_LITERALS, r.randrange(4)))}])"
        if pick == 8:
            sides: list[Callable[[int], str]] = [num, txt, boolean, lambda _: "null"]
            return f"({r.choice(sides)(d - 1)} {r.choice(['==', '!='])} {r.choice(sides)(d - 1)})"
        if pick == 9:
            return f"not {boolean(d - 1)}"
        if pick == 10:
            left, right = (r.choice([num, txt, boolean])(d - 1) for _ in "lr")
            return f"({left} {r.choice(['and', 'or'])} {right})"
        return f"({boolean(d - 1)} ? {boolean(d - 1)} : {boolean(d - 1)})"

    return [boolean(r.randrange(1, 5)) for _ in range(count)]


@cache
def compiled_corpus() -> RuleSet:
    """The corpus as a rule set, each rule compiled (built here, not loaded: many would
    fail on a payment of zeros, which `load` refuses)."""
    compiler, rules = Compiler(CONTEXT), []
    for i, when in enumerate(corpus(400, seed=20261201)):
        try:
            rule = rule_engine.Rule(when, context=CONTEXT)
        except (rule_engine.errors.EngineError, ArithmeticError):
            continue  # refused on load (`0 ** 0`, `inf - inf`, folded on parsing)
        rules.append(Rule(f"r{i}", Verdict.REVIEW, when, False, rule, compiler.rule(rule)))
    return RuleSet("corpus", tuple(rules), guard=compiler.guard())


# -- the properties ------------------------------------------------------------------------


def test_the_shipped_and_the_benchmark_rules_all_compile() -> None:
    assert len(BENCH.rules) == 30
    assert [r.name for r in BENCH.rules if r.test is None] == []


@CHECK
@given(payments)
def test_each_rule_answers_as_rule_engine(features: dict[str, Any]) -> None:
    assert BENCH.guard.accepts(features)  # the closures, not the fallback, answer here
    for rule in BENCH.rules:
        assert rule.test is not None
        assert outcome(rule.test, features) == outcome(rule.matches, features), rule.when
    assert fired(BENCH, features) == reference(BENCH, features)


@CHECK
@given(st.lists(boolean(3), min_size=8, max_size=8), payments)
def test_a_generated_expression_answers_as_rule_engine(
    texts: list[str], features: dict[str, Any]
) -> None:
    compiler = Compiler(CONTEXT)
    for text in texts:
        try:
            rule = rule_engine.Rule(text, context=CONTEXT)
        except (rule_engine.errors.EngineError, ArithmeticError):
            continue  # refused on load (`0 ** 0`, `inf - inf`, folded on parsing)
        test = compiler.rule(rule)
        assert compiler.guard().accepts(features)
        assert outcome(test, features) == outcome(rule.matches, features), text


@settings(CHECK, max_examples=40)
@given(payments, oddities)
def test_a_corpus_of_expressions_answers_as_rule_engine(
    features: dict[str, Any], odd: list[tuple[str, Any]]
) -> None:
    corpus = compiled_corpus()
    assert len(corpus.rules) > 300
    if corpus.guard.accepts(features):
        for rule in corpus.rules:
            assert rule.test is not None
            assert outcome(rule.test, features) == outcome(rule.matches, features), rule.when
    if odd:
        features.update(odd)
        assert fired(corpus, features) == reference(corpus, features)


def test_one_value_of_another_type_sends_the_payment_to_rule_engine() -> None:
    plain: dict[str, Any] = (
        dict.fromkeys(NUMBERS, 0) | dict.fromkeys(TEXTS, "") | dict.fromkeys(FLAGS, False)
    )
    plain |= {"amount_major": 5000.0, "score": 5, "country_mismatch": True}
    for name in READ:
        for value in ODD:
            features = plain | {name: value}
            if value is None or isinstance(value, Word) or value != value:
                assert not BENCH.guard.accepts(features)
            assert fired(BENCH, features) == reference(BENCH, features), (name, value)
        del (features := dict(plain))[name]
        assert fired(BENCH, features) == reference(BENCH, features), name
    # where a float and rule-engine's Decimal part: beyond 2**53, and 1e23 (a float
    # whose shortest text is not its value)
    edges = ["amount < 1e23", "amount >= 1e23", "amount == 9007199254740992", "amount > 2.5"]
    text = 'version: "edges"\nrules:\n' + "".join(
        f"  - name: edge_{i}\n    action: review\n    when: {when}\n"
        for i, when in enumerate(edges)
    )
    rules = load("edges.yaml", text)
    for value in ODD:
        features = plain | {"amount": value}
        assert fired(rules, features) == reference(rules, features), value


@settings(CHECK, max_examples=40)
@given(payments, oddities)
def test_a_payment_with_values_of_other_types_goes_through_rule_engine(
    features: dict[str, Any], odd: list[tuple[str, Any]]
) -> None:
    features.update(odd)
    if odd and odd[-1][1] is None and len(odd) > 1:
        del features[odd[0][0]]  # and a missing feature
    assert fired(BENCH, features) == reference(BENCH, features)


def test_a_construct_not_compiled_stays_with_rule_engine() -> None:
    text = """\
version: "odd"
rules:
  - name: bitwise
    action: review
    when: (hour & 1) == 1
  - name: attribute
    action: review
    when: currency.length == 3
  - name: plain
    action: review
    when: hour >= 0
"""
    rules = load("odd.yaml", text)
    assert [r.test is None for r in rules.rules] == [True, True, False]
    payment: dict[str, Any] = (
        dict.fromkeys(FEATURES, 0) | {n: "" for n in TEXTS} | {n: False for n in FLAGS}
    )
    payment |= {"hour": 3, "currency": "CNY"}
    assert [f.rule for f in rules.fire(payment)] == ["bitwise", "attribute", "plain"]


def test_a_failing_compiled_rule_is_counted_and_does_not_match() -> None:
    text = """\
version: "ratio"
rules:
  - name: ratio_compiled
    action: block
    when: amount_major / (customer_successes - 1) > 10
  - name: big_compiled
    action: review
    when: amount_major > 50
"""
    rules = load("ratio.yaml", text)
    assert all(r.test is not None for r in rules.rules)
    payment: dict[str, Any] = (
        dict.fromkeys(NUMBERS, 0) | {n: "" for n in TEXTS} | {n: False for n in FLAGS}
    )
    payment |= {"amount_major": 500.0, "customer_successes": 1}

    def errors() -> float:
        labels = {"rule": "ratio_compiled"}
        return REGISTRY.get_sample_value("paymend_risk_rule_errors_total", labels) or 0.0

    before = errors()
    assert [f.rule for f in rules.fire(payment)] == ["big_compiled"]
    assert errors() == before + 1
    payment["customer_successes"] = 3
    assert [f.rule for f in rules.fire(payment)] == ["ratio_compiled", "big_compiled"]
