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
# Metrics of the exporters beside aiorch that the rules and the dashboard read, by source. Their names are
# the exporters' own (checked against their sources: prometheus-nats-exporter's collector/jsz.go and varz,
# CloudNativePG's default monitoring queries and the Barman Cloud plugin, NVIDIA's dcgm-exporter counters).
NATS_EXPORTER_METRICS = frozenset(
    {
        "jetstream_server_total_message_bytes",
        "jetstream_server_max_storage",
        "jetstream_server_total_streams",
        "jetstream_stream_total_messages",
        "jetstream_consumer_num_pending",
        "jetstream_consumer_num_ack_pending",
        "jetstream_consumer_num_redelivered",
        "gnatsd_varz_connections",
    }
)
CNPG_METRICS = frozenset(
    {
        "cnpg_collector_up",
        "cnpg_backends_total",
        "cnpg_pg_settings_setting",
        "cnpg_pg_replication_lag",
        "cnpg_pg_replication_in_recovery",
        "cnpg_pg_stat_archiver_last_archived_time",
        "cnpg_pg_stat_archiver_last_failed_time",
        "cnpg_pg_stat_database_xact_commit",
        "cnpg_pg_stat_database_xact_rollback",
        "barman_cloud_cloudnative_pg_io_last_available_backup_timestamp",
    }
)
DCGM_METRICS = frozenset(
    {"DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_POWER_USAGE"}
)
# Prometheus's own series of every target.
PROMETHEUS_METRICS = frozenset({"up"})
# Series that carry a `cluster` label of their own (CloudNativePG's cluster name), which a dashboard's
# Kubernetes-cluster filter must not match against.
OWN_CLUSTER_LABEL = frozenset({"cnpg_collector_up"})
# The dashboard's scope, on every series it reads.
DASHBOARD_SCOPE = ('cluster=~"$cluster"', 'namespace=~"$namespace"')

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


def _blank(text: str, pattern: re.Pattern[str]) -> str:
    return pattern.sub(lambda match: " " * len(match.group()), text)


def promql_selectors(expr: str) -> list[tuple[str, str]]:
    """Each series selector of a PromQL expression as (metric name, its label matchers without braces)."""
    quoted = text = _blank(expr, _STRING)
    for pattern in (_MATCHERS, _RANGE, _GROUPING, _VARIABLE):
        text = _blank(text, pattern)  # same length: positions in `text` are positions in `expr`
    selectors = []
    for match in _IDENTIFIER.finditer(text):
        word = match.group()
        if word in _PROMQL_KEYWORDS or text[match.end() :].lstrip().startswith("("):
            continue  # an operator or a function
        matchers = _MATCHERS.match(quoted, match.end())
        selectors.append((word, expr[matchers.start() + 1 : matchers.end() - 1] if matchers else ""))
    return selectors


def promql_metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (good enough for the expressions kept here)."""
    return {name for name, _ in promql_selectors(expr)}


def recorded_names() -> set[str]:
    """The series the recording rules write."""
    return {rule["record"] for group in rule_groups() for rule in group["rules"] if "record" in rule}


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
