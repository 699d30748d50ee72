"""deploy/observability read as data: the alert rules, the Grafana dashboard, and the metrics their PromQL reads.

Shared by the alert rules' own checks (tests/unit/test_alert_rules.py) and the check against a real Envoy and
a real stack (tests/e2e/test_observability.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
OBSERVABILITY = ROOT / "deploy" / "observability"
RULES = OBSERVABILITY / "prometheus-rules.yaml"
RULE_TESTS = OBSERVABILITY / "alerts.test.yaml"
DASHBOARD = OBSERVABILITY / "grafana-dashboard.json"

# Envoy's own metrics the dashboard uses (Envoy's /stats/prometheus names); tests/e2e/test_observability.py
# checks against a real Envoy that each of them exists.
ENVOY_METRICS = frozenset(
    {
        "envoy_http_downstream_rq_xx",
        "envoy_http_downstream_rq_total",
        "envoy_http_downstream_rq_active",
        "envoy_http_downstream_rq_time_bucket",
        "envoy_cluster_upstream_rq_time_bucket",
        "envoy_cluster_membership_healthy",
    }
)
# Words of PromQL that are not metric names.
_PROMQL_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right"}
)
_STRING = re.compile(r'"(?:\\.|[^"\\])*"')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_VARIABLE = re.compile(r"\$\w+")
_IDENTIFIER = re.compile(r"(?<![\w.])[a-zA-Z_:][a-zA-Z0-9_:]*")


def promql_metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (good enough for the expressions kept here)."""
    text = _STRING.sub('""', expr)
    for pattern in (_MATCHERS, _RANGE, _GROUPING, _VARIABLE):
        text = pattern.sub(" ", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        word = match.group()
        if word in _PROMQL_KEYWORDS or text[match.end() :].lstrip().startswith("("):
            continue  # an operator or a function
        names.add(word)
    return names


def rule_groups() -> list[dict[str, Any]]:
    """spec.groups of the PrometheusRule: a plain Prometheus rules file's `groups`."""
    resource = yaml.safe_load(RULES.read_text())
    groups: list[dict[str, Any]] = resource["spec"]["groups"]
    return groups


def alert_rules() -> list[dict[str, Any]]:
    """Every alerting rule (not recording rules) of every group."""
    return [rule for group in rule_groups() for rule in group["rules"] if "alert" in rule]


def dashboard_panels() -> Iterator[dict[str, Any]]:
    """Every panel of the dashboard, those inside collapsed rows too."""
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        yield panel
        yield from panel.get("panels", [])


def dashboard_exprs() -> list[str]:
    """The PromQL expression of every target of every panel."""
    return [target["expr"] for panel in dashboard_panels() for target in panel.get("targets", [])]
