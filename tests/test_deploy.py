"""deploy/: the Grafana dashboard and the Prometheus alert rules name only metrics
paymend exports, with labels they carry, and the rules have the shape Prometheus loads."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client import REGISTRY

import paymend.engine.customer_notices
import paymend.engine.notifications
import paymend.engine.ops_alerts
import paymend.engine.risk_gate
import paymend.failures.classify
import paymend.observability
import paymend.providers.metrics
import paymend.risk.rules  # noqa: F401  (each registers its metrics on import)

DEPLOY = Path(__file__).parents[1] / "deploy"
NAME = re.compile(r"\b(paymend_[a-z_]+)(?:\{([^}]*)\})?")
LABEL = re.compile(r"(\w+)\s*(?:=~|!~|!=|=)")
SUFFIXES = ("_bucket", "_count", "_sum")


def _exported() -> dict[str, set[str]]:
    """Every paymend sample name with the labels it carries."""
    found: dict[str, set[str]] = {}
    for metric in REGISTRY.collect():
        if metric.name.startswith("paymend_"):
            labels = set(getattr(REGISTRY._names_to_collectors.get(metric.name), "_labelnames", ()))
            for name in (metric.name, metric.name + "_total", *(metric.name + s for s in SUFFIXES)):
                found[name] = labels | {"le"}
    return found


def _named(text: str) -> list[tuple[str, set[str]]]:
    return [(name, set(LABEL.findall(labels))) for name, labels in NAME.findall(text)]


def test_the_dashboard_and_the_rules_name_only_exported_metrics_and_labels() -> None:
    exported = _exported()
    dashboard = (DEPLOY / "grafana" / "paymend-dashboard.json").read_text()
    json.loads(dashboard)
    rules = (DEPLOY / "prometheus" / "paymend-alerts.yml").read_text()
    named = _named(dashboard) + _named(rules)
    assert len(named) > 20
    for name, labels in named:
        assert name in exported, name
        assert labels <= exported[name], (name, labels - exported[name])


def test_every_alert_rule_has_an_expression_a_severity_and_a_summary() -> None:
    loaded = yaml.safe_load((DEPLOY / "prometheus" / "paymend-alerts.yml").read_text())
    rules = [r for group in loaded["groups"] for r in group["rules"]]
    assert len({r["alert"] for r in rules}) == len(rules) >= 8
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["expr"].strip() and rule["labels"]["severity"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
