"""The rules file: named rules in rule-engine's expression language, validated on load.

The file is data an analyst edits (docs/risk.md); a mistake refuses to load and names
the file and line: an unknown key or action (pydantic, through `datafiles`), and in a
rule's `when` a syntax error, an unknown feature, a type error (`amount > "x"`) or an
expression that is not a yes/no question. Rules are compiled against a typed context
built from risk/features.py, so nothing is found wrong only when a payment arrives.
No Python is evaluated: rule-engine parses its own grammar
(https://zerosteiner.github.io/rule-engine/syntax.html), and its checked syntax tree is
then turned into plain closures (risk/compiled.py) that answer as its interpreter
would, at a fraction of the cost.
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import rule_engine
import structlog
from prometheus_client import Counter
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from paymend.datafiles import DataFileError, line_of, read_yaml, validate_model
from paymend.risk.compiled import Compiler, Guard, Test, Unsupported
from paymend.risk.features import FEATURES, Kind, defaults
from paymend.risk.model import Fired, Verdict

SHIPPED_RULES = Path(__file__).with_name("rules.yaml")
_TYPES = {
    Kind.NUMBER: rule_engine.DataType.FLOAT,
    Kind.TEXT: rule_engine.DataType.STRING,
    Kind.FLAG: rule_engine.DataType.BOOLEAN,
}
CONTEXT = rule_engine.Context(
    type_resolver=rule_engine.type_resolver_from_dict(
        {name: _TYPES[kind] for name, kind in FEATURES.items()}
    ),
    default_timezone="UTC",
    # its own, not the thread's current context at import: numbers are Decimal in rules
    decimal_context=decimal.Context(),
)
RuleName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,63}$")]


class RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: RuleName
    action: Verdict
    when: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    shadow: bool = False  # evaluated and recorded, never enforced
    description: str = ""


class LimitsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # the amount limit of a score-50 customer or card, in major units of any currency;
    # `by_currency` for currencies whose unit is worth far less (JPY, KRW)
    base_major: float = Field(2000.0, gt=0)
    by_currency: dict[Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")], float] = {}


class RulesFileIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    shadow: bool = False  # the whole version runs in shadow (beside the live one)
    limits: LimitsIn = LimitsIn()
    rules: list[RuleIn] = []


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    action: Verdict
    when: str
    shadow: bool
    compiled: rule_engine.Rule
    test: Test | None = None  # the same question as plain closures, when it compiles

    def matches(self, features: dict[str, Any]) -> bool:
        """rule-engine's own answer (its interpreter)."""
        return bool(self.compiled.matches(features))


@dataclass(frozen=True, slots=True)
class RuleSet:
    """A loaded, compiled rules version."""

    version: str
    rules: tuple[Rule, ...]
    base_major: float = 2000.0
    by_currency: tuple[tuple[str, float], ...] = ()
    source: str = ""
    shadow: bool = False  # the whole version: recorded, never enforced
    # the features the compiled rules read: a payment whose values have other types
    # than the closures assume is asked through rule-engine
    guard: Guard = field(default_factory=Guard)

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.rules]

    def base_limit(self, currency: str) -> float:
        return dict(self.by_currency).get(currency, self.base_major)

    def fire(self, features: dict[str, Any], *, all_shadow: bool = False) -> list[Fired]:
        """Every rule that matches, in file order. A rule that fails on this payment
        (a division by zero) does not match; it is counted and logged, the others run."""
        fast = self.guard.accepts(features)
        fired = []
        for rule in self.rules:
            test = rule.test if fast else None
            try:
                yes = test(features) if test is not None else rule.matches(features)
            except rule_engine.errors.EngineError as exc:
                RULE_ERRORS.labels(rule.name).inc()
                log.warning("risk_rule_failed", rule=rule.name, error=str(exc))
                continue
            if yes:
                fired.append(
                    Fired(rule.name, rule.action, rule.shadow or all_shadow or self.shadow)
                )
        return fired


RULE_ERRORS = Counter(
    "paymend_risk_rule_errors_total", "Rules that failed on a payment (not matched)", ["rule"]
)
log = structlog.get_logger("paymend.risk")


def _compile(text: str) -> rule_engine.Rule:
    rule = rule_engine.Rule(text, context=CONTEXT)
    if rule.statement.expression.result_type is not rule_engine.DataType.BOOLEAN:
        raise ValueError("must be a yes/no question (a comparison), e.g. amount_major > 100")
    return rule


def _say(exc: Exception) -> str:
    message = str(getattr(exc, "message", None) or exc)
    if isinstance(exc, rule_engine.errors.SymbolResolutionError):
        return f"unknown feature '{exc.symbol_name}' (docs/risk.md lists them)"
    if isinstance(exc, rule_engine.errors.SyntaxError):
        return f"not a valid expression: {message}"
    if isinstance(exc, rule_engine.errors.EvaluationError):
        return f"{message} (a feature compared with a value of another type?)"
    if isinstance(exc, decimal.DecimalException):  # rule-engine lets these through
        return f"arithmetic that cannot be done ({type(exc).__name__}, e.g. inf - inf)"
    return message


def parse(data: Any, node: Any, path: str) -> RuleSet:
    parsed = validate_model(RulesFileIn, data, node, path)
    seen: dict[str, int] = {}
    compiled: list[Rule] = []
    compiler = Compiler(CONTEXT)
    for i, r in enumerate(parsed.rules):
        if r.name in seen:
            raise DataFileError(
                path,
                line_of(node, ["rules", i, "name"]),
                f"rules.{i}.name: '{r.name}' is already the name of rules.{seen[r.name]}",
            )
        seen[r.name] = i
        try:
            rule = _compile(r.when)
            rule.matches(defaults())  # a rule that cannot run on a plain payment is refused
        except (rule_engine.errors.EngineError, ValueError, ArithmeticError) as exc:
            line = line_of(node, ["rules", i, "when"])
            raise DataFileError(path, line, f"rules.{i}.when ({r.name}): {_say(exc)}") from None
        compiled.append(
            Rule(r.name, r.action, r.when.strip(), r.shadow, rule, _closure(compiler, rule))
        )
    return RuleSet(
        parsed.version,
        tuple(compiled),
        parsed.limits.base_major,
        tuple(sorted(parsed.limits.by_currency.items())),
        path,
        parsed.shadow,
        compiler.guard(),
    )


def _closure(compiler: Compiler, rule: rule_engine.Rule) -> Test | None:
    """The rule as closures, or None (a construct risk/compiled.py does not reproduce
    exactly): then rule-engine answers it."""
    try:
        return compiler.rule(rule)
    except Unsupported:
        return None


def load(path: str | Path, text: str | None = None) -> RuleSet:
    """The compiled rules of `path`; DataFileError names the line of a mistake."""
    data, node = read_yaml(path, text)
    return parse(data, node, str(path))
