"""Risk rules as plain Python closures: what rule-engine answers, without its interpreter.

rule-engine walks a rule's syntax tree on every evaluation, checking each value's type
on the way (6 µs a rule on a quiet machine, 40 µs on a loaded one), and a payment asks
every rule. Here each rule's
already type-checked tree (`rule.statement.expression`) is turned once, on load, into
nested closures that do only the arithmetic and comparisons. No Python source is
generated or evaluated. A node kind not handled here exactly raises `Unsupported` and
that rule keeps rule-engine's `matches`; tests/risk/test_compiled.py checks the answers
are rule-engine's.

How rule-engine's meaning is kept (rule_engine/ast, 5.1):
- Its numbers are `Decimal`: a float feature becomes `Decimal(repr(x))`, an int
  `Decimal(x)`, a literal the Decimal of its text. `repr` is the shortest text that
  rounds back to the float and rounding is monotonic, so comparing two floats orders
  them as their Decimals do; an int of at most 2**53 is a float exactly. A comparison
  of features with literals that a float spells exactly (`Decimal(repr(float(L))) == L`)
  is therefore done on the plain values ("num"); arithmetic, and a literal no float
  spells (`0.30000000000000001`), are done in `Decimal` with rule-engine's decimal
  context ("dec"), as rule-engine does.
- `==` is false across types (a number is never equal to a text); ordered comparisons,
  regular expressions (`=~` is `re.match`, `=~~` is `re.search`), `in`, `and`/`or`
  (truthiness, short-circuit), `not`, `? :` and arithmetic errors
  (`errors.ArithmeticError`) follow the node classes' code.
- The closures assume every feature they read has its declared kind's plain type: a
  finite float or an int within 2**53 for a number, a `str`, a `bool`. `Guard.accepts`
  checks that once per payment; when a value is anything else (a missing feature,
  None, NaN, a str subclass), the whole payment goes through rule-engine.
"""

from __future__ import annotations

import decimal
import operator
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import rule_engine
from rule_engine import ast, errors

Features = Mapping[str, Any]
Fn = Callable[[Features], Any]
Test = Callable[[Features], bool]

NUM, DEC, STR, BOOL, NULL = "num", "dec", "str", "bool", "null"
_KINDS = {
    rule_engine.DataType.FLOAT: NUM,
    rule_engine.DataType.STRING: STR,
    rule_engine.DataType.BOOLEAN: BOOL,
}
_EXACT_INT = 2**53
_MAX_FLOAT = sys.float_info.max
_ORDERED = {"gt": operator.gt, "ge": operator.ge, "lt": operator.lt, "le": operator.le}
_REGEX = {"eq_fzm": ("match", True), "eq_fzs": ("search", True)}
_REGEX |= {"ne_fzm": ("match", False), "ne_fzs": ("search", False)}


class Unsupported(Exception):
    """A node this module does not reproduce exactly: the rule stays with rule-engine."""


@dataclass(frozen=True, slots=True)
class Node:
    kind: str  # NUM, DEC, STR, BOOL or NULL: the type of what `fn` returns
    fn: Fn
    const: tuple[Any] | None = None  # (value,) for a literal
    exact: Decimal | None = None  # a number literal's own Decimal


@dataclass(frozen=True, slots=True)
class Guard:
    """The features the compiled rules read, by kind: a payment whose values all have
    the plain type their closures assume may use them."""

    numbers: tuple[str, ...] = ()
    texts: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()

    def accepts(self, features: Features) -> bool:
        try:
            for name in self.numbers:
                value = features[name]
                kind = type(value)
                if kind is float:
                    if not -_MAX_FLOAT <= value <= _MAX_FLOAT:  # NaN, infinities
                        return False
                elif kind is not int or not -_EXACT_INT <= value <= _EXACT_INT:
                    return False
            for name in self.texts:
                if type(features[name]) is not str:
                    return False
            for name in self.flags:
                if type(features[name]) is not bool:
                    return False
        except (KeyError, TypeError):
            return False
        return True


def to_decimal(value: float | int) -> Decimal:
    """A number feature as rule-engine holds it (rule_engine/types/coercion.py)."""
    return Decimal(repr(value)) if type(value) is float else Decimal(value)


class Compiler:
    """Compiles the rules of one rule-engine context; `used` collects the features read."""

    def __init__(self, context: rule_engine.Context) -> None:
        self.context = context
        self.decimal = context.decimal_context.copy()  # rule-engine evaluates in a copy too
        self.used: set[tuple[str, str]] = set()
        self.found: set[tuple[str, str]] = set()

    def rule(self, rule: rule_engine.Rule) -> Test:
        """The rule's `matches` as a closure; `Unsupported` if any node is not handled."""
        if rule.context is not self.context:
            raise Unsupported("another context")
        self.found = set()
        top = self.node(rule.statement.expression)
        self.used |= self.found
        if top.kind == BOOL:  # every BOOL node returns a bool already
            return top.fn
        fn = top.fn

        def test(features: Features) -> bool:
            return bool(fn(features))

        return test

    def guard(self) -> Guard:
        """The check of the features every rule compiled so far reads."""
        by_kind: dict[str, set[str]] = {NUM: set(), STR: set(), BOOL: set()}
        for name, kind in self.used:
            by_kind[kind].add(name)
        return Guard(*(tuple(sorted(by_kind[k])) for k in (NUM, STR, BOOL)))

    def node(self, node: ast.ExpressionBase) -> Node:
        handler = _HANDLERS.get(type(node))  # the exact class: a subclass may mean otherwise
        if handler is None:
            raise Unsupported(type(node).__name__)
        result: Node = getattr(self, handler)(node)
        return result

    # -- leaves -------------------------------------------------------------------------

    def _symbol(self, node: ast.SymbolExpression) -> Node:
        kind = _KINDS.get(node.result_type)
        if node.scope is not None or kind is None:
            raise Unsupported(f"symbol {node.name}")
        self.found.add((node.name, kind))
        return Node(kind, operator.itemgetter(node.name))

    def _float(self, node: ast.FloatExpression) -> Node:
        value = node.value
        if not isinstance(value, Decimal) or value.is_nan():
            raise Unsupported("NaN")
        as_float = float(value)
        if Decimal(repr(as_float)) == value:
            return Node(NUM, lambda f: as_float, (as_float,), value)
        return _constant(DEC, value)

    def _string(self, node: ast.StringExpression) -> Node:
        return _constant(STR, node.value)

    def _boolean(self, node: ast.BooleanExpression) -> Node:
        return _constant(BOOL, node.value)

    def _null(self, node: ast.NullExpression) -> Node:
        return _constant(NULL, None)

    # -- comparisons --------------------------------------------------------------------

    def _comparison(self, node: ast.ComparisonExpression) -> Node:
        left, right = self.node(node.left), self.node(node.right)
        if node.type not in ("eq", "ne"):
            raise Unsupported(node.type)
        equal = node.type == "eq"
        op = operator.eq if equal else operator.ne
        if {left.kind, right.kind} <= {NUM, DEC}:
            if left.kind == right.kind == NUM:
                return _binary(op, left, right)
            return _binary(op, self._dec(left), self._dec(right))
        if left.kind == right.kind:
            return _binary(op, left, right)
        lf, rf = left.fn, right.fn  # values of different types are never equal

        def differ(f: Features) -> bool:
            lf(f)
            rf(f)
            return not equal

        return Node(BOOL, differ)

    def _arithmetic_comparison(self, node: ast.ArithmeticComparisonExpression) -> Node:
        left, right = self.node(node.left), self.node(node.right)
        op = _ORDERED[node.type]
        if {left.kind, right.kind} <= {NUM, DEC}:
            if left.kind == right.kind == NUM:
                return _binary(op, left, right)
            return _binary(op, self._dec(left), self._dec(right))
        if left.kind != right.kind or left.kind not in (STR, BOOL):
            raise Unsupported("ordered comparison of these types")
        return _binary(op, left, right)

    def _fuzzy_comparison(self, node: ast.FuzzyComparisonExpression) -> Node:
        left = self.node(node.left)
        if left.kind != STR or not isinstance(node.right, ast.StringExpression):
            raise Unsupported("regular expression over a non-text or a non-literal")
        how, wanted = _REGEX[node.type]
        find = getattr(node._right, how)  # compiled by rule-engine with the context's flags
        lf = left.fn
        if wanted:
            return Node(BOOL, lambda f: find(lf(f)) is not None)
        return Node(BOOL, lambda f: find(lf(f)) is None)

    def _contains(self, node: ast.ContainsExpression) -> Node:
        member = self.node(node.member)
        mf = member.fn
        container = node.container
        if type(container) is ast.ArrayExpression:
            values = [self.node(v) for v in container.value]
            if any(v.const is None for v in values):
                raise Unsupported("array of non-literals")
            kinds = {v.kind for v in values}
            if not values:
                return Node(BOOL, lambda f: (mf(f), False)[1])
            if (kinds == {STR} and member.kind == STR) or kinds == {NUM} == {member.kind}:
                # equal floats are equal Decimals (module docstring), and hash alike
                literals = frozenset(v.const[0] for v in values if v.const)
                return Node(BOOL, lambda f: mf(f) in literals)
            if kinds <= {NUM, DEC} and member.kind in (NUM, DEC):
                decimals = tuple(self._dec(v).fn(None) for v in values)  # type: ignore[arg-type]
                df = self._dec(member).fn
                return Node(BOOL, lambda f: df(f) in decimals)
            raise Unsupported("array of these types")
        inside = self.node(container)
        if inside.kind == STR and member.kind == STR:
            cf = inside.fn

            def within(f: Features) -> bool:
                text = cf(f)
                return mf(f) in text

            return Node(BOOL, within)
        raise Unsupported("containment in this type")

    # -- logic --------------------------------------------------------------------------

    def _logic(self, node: ast.LogicExpression) -> Node:
        lf, rf = self.node(node.left).fn, self.node(node.right).fn
        if node.type == "and":
            return Node(BOOL, lambda f: bool(lf(f) and rf(f)))
        if node.type == "or":
            return Node(BOOL, lambda f: bool(lf(f) or rf(f)))
        raise Unsupported(node.type)

    def _unary(self, node: ast.UnaryExpression) -> Node:
        right = self.node(node.right)
        rf = right.fn
        if node.type == "not":
            return Node(BOOL, lambda f: not rf(f))
        if node.type == "uminus" and right.kind in (NUM, DEC):
            df, minus = self._dec(right).fn, self.decimal.minus
            return Node(DEC, lambda f: minus(df(f)))
        raise Unsupported(node.type)

    def _ternary(self, node: ast.TernaryExpression) -> Node:
        cf = self.node(node.condition).fn
        yes, no = self.node(node.case_true), self.node(node.case_false)
        if yes.kind != no.kind:
            if {yes.kind, no.kind} != {NUM, DEC}:
                raise Unsupported("branches of different types")
            yes, no = self._dec(yes), self._dec(no)
        yf, nf = yes.fn, no.fn
        return Node(yes.kind, lambda f: yf(f) if cf(f) else nf(f))

    # -- arithmetic ---------------------------------------------------------------------

    def _add(self, node: ast.AddExpression) -> Node:
        left, right = self.node(node.left), self.node(node.right)
        if left.kind == right.kind == STR:
            return _binary(operator.add, left, right, STR)
        return self._decimal_op(self.decimal.add, left, right, wrap=False)

    def _subtract(self, node: ast.SubtractExpression) -> Node:
        left, right = self.node(node.left), self.node(node.right)
        return self._decimal_op(self.decimal.subtract, left, right, wrap=False)

    def _arithmetic(self, node: ast.ArithmeticExpression) -> Node:
        left, right = self.node(node.left), self.node(node.right)
        ops = {
            "tdiv": self.decimal.divide,
            "fdiv": self.decimal.divide_int,
            "mod": self.decimal.remainder,
            "mul": self.decimal.multiply,
            "pow": self.decimal.power,
        }
        if node.type not in ops:
            raise Unsupported(node.type)
        return self._decimal_op(ops[node.type], left, right, wrap=True)

    def _decimal_op(
        self, op: Callable[[Decimal, Decimal], Decimal], left: Node, right: Node, *, wrap: bool
    ) -> Node:
        """rule-engine's `+` and `-` let a decimal error through; `* / // % **` turn it
        into its own ArithmeticError (rule_engine/ast/binary/arithmetic.py)."""
        if left.kind not in (NUM, DEC) or right.kind not in (NUM, DEC):
            raise Unsupported("arithmetic on these types")
        if not self.decimal.traps[decimal.InvalidOperation]:
            raise Unsupported("a decimal context that lets NaN through")
        lf, rf = self._dec(left).fn, self._dec(right).fn
        if not wrap:
            return Node(DEC, lambda f: op(lf(f), rf(f)))

        def guarded(f: Features) -> Decimal:
            a, b = lf(f), rf(f)
            try:
                return op(a, b)
            except ZeroDivisionError:
                raise errors.ArithmeticError("arithmetic error: division by zero") from None
            except ArithmeticError:
                raise errors.ArithmeticError("arithmetic error") from None

        return Node(DEC, guarded)

    def _dec(self, node: Node) -> Node:
        """The node's value as rule-engine's Decimal."""
        if node.kind == DEC:
            return node
        if node.kind != NUM:
            raise Unsupported("not a number")
        if node.const is not None:
            return _constant(DEC, node.exact if node.exact is not None else node.const[0])
        fn = node.fn
        return Node(DEC, lambda f: to_decimal(fn(f)))


_HANDLERS: dict[type, str] = {
    ast.SymbolExpression: "_symbol",
    ast.FloatExpression: "_float",
    ast.StringExpression: "_string",
    ast.BooleanExpression: "_boolean",
    ast.NullExpression: "_null",
    ast.ComparisonExpression: "_comparison",
    ast.ArithmeticComparisonExpression: "_arithmetic_comparison",
    ast.FuzzyComparisonExpression: "_fuzzy_comparison",
    ast.ContainsExpression: "_contains",
    ast.LogicExpression: "_logic",
    ast.UnaryExpression: "_unary",
    ast.TernaryExpression: "_ternary",
    ast.AddExpression: "_add",
    ast.SubtractExpression: "_subtract",
    ast.ArithmeticExpression: "_arithmetic",
}


def _constant(kind: str, value: Any) -> Node:
    return Node(kind, lambda f: value, (value,))


def _binary(op: Callable[[Any, Any], Any], left: Node, right: Node, kind: str = BOOL) -> Node:
    """`op(left, right)`, with a literal side bound once (the common `feature > 100`)."""
    lf, rf = left.fn, right.fn
    if right.const is not None:
        value = right.const[0]
        return Node(kind, lambda f: op(lf(f), value))
    if left.const is not None:
        value = left.const[0]
        return Node(kind, lambda f: op(value, rf(f)))
    return Node(kind, lambda f: op(lf(f), rf(f)))
