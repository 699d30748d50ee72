"""deploy/observability: the alert rules pass `promtool check rules` and their unit tests, and the rules and the
Grafana dashboard query only metrics the code (or Envoy) exports.

promtool comes with Debian's `prometheus` package, which `make venv` installs; without it these tests fail
rather than skip, so a missing tool cannot hide a broken rule.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

# Imported for their metric definitions, which register with the default registry.
import services.common.metrics
import services.common.outbox
import services.jobs.job_metrics
import services.workers.worker_metrics
from tests.observability_config import (
    CNPG_METRICS,
    DASHBOARD,
    DASHBOARD_SCOPE,
    DCGM_METRICS,
    ENVOY_METRICS,
    NATS_EXPORTER_METRICS,
    OBSERVABILITY,
    OWN_CLUSTER_LABEL,
    PROMETHEUS_METRICS,
    ROOT,
    RULE_TESTS,
    RULES,
    alert_rules,
    dashboard_exprs,
    dashboard_panels,
    promql_metric_names,
    promql_selectors,
    recorded_names,
    rule_groups,
)

OPERATIONS = ROOT / "docs" / "operations.md"
RUNBOOK_PAGE = "https://github.com/aiorch/aiorch/blob/main/docs/operations.md"
# The name alerts.test.yaml gives its rule file.
EXTRACTED_RULES = "aiorch.rules.yaml"

SAMPLE_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
}


def exported_metric_names() -> set[str]:
    """Every sample name the services and workers can export (from their metric definitions)."""
    names: set[str] = set()
    for family in REGISTRY.collect():
        names.update(family.name + suffix for suffix in SAMPLE_SUFFIXES.get(family.type, ("",)))
    return names


def known_metric_names() -> set[str]:
    """What the rules and panels may read: aiorch's metrics, the exporters' beside it, and the recorded series."""
    return (
        exported_metric_names()
        | ENVOY_METRICS
        | NATS_EXPORTER_METRICS
        | CNPG_METRICS
        | DCGM_METRICS
        | PROMETHEUS_METRICS
        | recorded_names()
    )


def _anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def markdown_anchors(text: str) -> set[str]:
    """The anchors of a Markdown document's headings (not of `#` lines inside code blocks)."""
    anchors, fenced = set(), False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(r"#{1,6} ", line):
            anchors.add(_anchor(line.lstrip("#")))
    return anchors


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail(
            "promtool not found: install Debian's prometheus package "
            "(`make venv` does as root; otherwise `sudo apt-get install prometheus`)"
        )
    return path


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    """The rule groups as a plain rules file, beside a copy of the promtool unit tests."""
    (tmp_path / EXTRACTED_RULES).write_text(yaml.safe_dump({"groups": rule_groups()}, sort_keys=False))
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    return tmp_path


def _promtool(promtool: str, *args: str, cwd: Path) -> None:
    result = subprocess.run([promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, f"promtool {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"


def test_promtool_check_rules(promtool: str, rules_dir: Path) -> None:
    _promtool(promtool, "check", "rules", EXTRACTED_RULES, cwd=rules_dir)


def test_promtool_unit_tests_of_the_alerts(promtool: str, rules_dir: Path) -> None:
    _promtool(promtool, "test", "rules", RULE_TESTS.name, cwd=rules_dir)


def test_the_resource_is_a_prometheus_rule() -> None:
    resource = yaml.safe_load(RULES.read_text())
    assert resource["apiVersion"] == "monitoring.coreos.com/v1"
    assert resource["kind"] == "PrometheusRule"
    assert resource["metadata"]["name"] == "aiorch"
    assert [group["name"] for group in rule_groups()] == ["aiorch", "aiorch-nats", "aiorch-postgres", "aiorch-slo"]


def test_every_alert_has_a_duration_severity_and_a_runbook_that_exists() -> None:
    headings = markdown_anchors(OPERATIONS.read_text())
    names = [rule["alert"] for rule in alert_rules()]
    assert len(names) == len(set(names))
    assert set(names) >= {
        "AiorchQueueBacklogGrowing",
        "AiorchNoWorkerForType",
        "AiorchJobFailureRatioHigh",
        "AiorchRpcErrorRatioHigh",
        "AiorchRpcLatencyP99High",
        "AiorchOutboxBacklog",
        # Day-one monitoring: the platform's own parts dying, and the SLOs' error budgets.
        "AiorchJobsMetricsAbsent",
        "AiorchTargetDown",
        "AiorchGateway5xxRatioHigh",
        "AiorchNatsJetStreamStorageHigh",
        "AiorchNatsLeaderLost",
        "AiorchNatsRedeliveries",
        "AiorchPostgresDown",
        "AiorchPostgresReplicationLag",
        "AiorchPostgresWalArchivingFailing",
        "AiorchPostgresBackupTooOld",
        "AiorchPostgresConnectionsNearLimit",
        "AiorchCreateErrorBudgetBurnFast",
        "AiorchCreateErrorBudgetBurnSlow",
        "AiorchDispatchLatencyBudgetBurnFast",
        "AiorchDispatchLatencyBudgetBurnSlow",
    }
    for rule in alert_rules():
        assert rule.get("for"), rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"], rule["alert"]
        page, _, anchor = annotations["runbook_url"].partition("#")
        # Absolute: a relative link means nothing in Alertmanager, a pager or a chat message.
        assert page == RUNBOOK_PAGE, rule["alert"]
        assert anchor == rule["alert"].lower(), rule["alert"]
        assert anchor in headings, f"docs/operations.md has no heading for {rule['alert']}"


def test_every_alert_has_unit_tests_that_see_it_fire_and_stay_quiet() -> None:
    cases = [case for test in yaml.safe_load(RULE_TESTS.read_text())["tests"] for case in test["alert_rule_test"]]
    for name in (rule["alert"] for rule in alert_rules()):
        mine = [case for case in cases if case["alertname"] == name]
        assert any(case.get("exp_alerts") for case in mine), f"no test sees {name} fire"
        assert any(not case.get("exp_alerts") for case in mine), f"no test sees {name} stay quiet"


def test_the_rules_read_only_metrics_the_code_or_its_exporters_export() -> None:
    known = known_metric_names()
    for group in rule_groups():
        for rule in group["rules"]:
            unknown = promql_metric_names(rule["expr"]) - known
            name = rule.get("alert") or rule["record"]
            assert not unknown, f"{name} reads metrics nothing exports: {sorted(unknown)}"


def test_the_slo_alerts_pair_a_short_and_a_long_window_of_one_recorded_ratio() -> None:
    slo = next(group for group in rule_groups() if group["name"] == "aiorch-slo")
    recorded = {rule["record"] for rule in slo["rules"] if "record" in rule}
    windows = {"Fast": ["ratio_rate5m", "ratio_rate1h"], "Slow": ["ratio_rate30m", "ratio_rate6h"]}
    alerts = [rule for rule in slo["rules"] if "alert" in rule]
    assert len(alerts) == 4
    for rule in alerts:
        read = [name for name, _ in promql_selectors(rule["expr"])]
        assert set(read) <= recorded, rule["alert"]
        assert len({name.rsplit(":", 1)[0] for name in read}) == 1, rule["alert"]
        # The short window first: the description's $value is the left side's, the recent ratio.
        assert [name.rsplit(":", 1)[1] for name in read] == windows[rule["alert"][-4:]], rule["alert"]


def test_the_dashboard_is_importable_and_reads_only_known_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["schemaVersion"] >= 36
    assert dashboard["uid"] and dashboard["title"]
    assert [i["name"] for i in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    panels = list(dashboard_panels())
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    graphs = [panel for panel in panels if panel["type"] != "row"]
    assert len(graphs) >= 10
    known = known_metric_names()
    for panel in graphs:
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            names = promql_metric_names(target["expr"])
            assert names, f"{panel['title']}: no metric in {target['expr']}"
            assert not names - known, f"{panel['title']} reads unknown metrics: {sorted(names - known)}"
    read = {name for expr in dashboard_exprs() for name in promql_metric_names(expr)}
    # The panels the issue asks for.
    for wanted in (
        "grpc_server_handled_total",
        "grpc_server_handling_seconds_bucket",
        "aiorch_jobs_created_total",
        "aiorch_jobs_finished_total",
        "aiorch_job_queue_wait_seconds_bucket",
        "aiorch_job_run_seconds_bucket",
        "aiorch_queue_depth",
        "aiorch_watch_streams_active",
        "aiorch_worker_busy",
        "aiorch_outbox_backlog",
        "envoy_http_downstream_rq_xx",
        "envoy_cluster_upstream_rq_time_bucket",
        "jetstream_server_total_message_bytes",
        "jetstream_consumer_num_redelivered",
        "cnpg_collector_up",
        "cnpg_pg_replication_lag",
        "DCGM_FI_DEV_GPU_UTIL",
    ):
        assert wanted in read, f"no panel shows {wanted}"
    rows = [panel["title"] for panel in panels if panel["type"] == "row"]
    for section in ("NATS JetStream", "PostgreSQL (CloudNativePG)", "GPU (DCGM exporter)"):
        assert section in rows


def test_the_dashboard_is_scoped_by_cluster_and_namespace() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    for name in ("cluster", "namespace"):
        variable = variables[name]
        assert variable["type"] == "query" and variable["includeAll"] and variable["allValue"] == ".*", name
    # One Prometheus without a `cluster` external label: ".*" also matches the label's absence.
    assert "cluster" in variables["namespace"]["definition"]
    for expr in dashboard_exprs():
        for metric, matchers in promql_selectors(expr):
            wanted = [m for m in DASHBOARD_SCOPE if not (metric in OWN_CLUSTER_LABEL and m.startswith("cluster"))]
            for matcher in wanted:
                assert matcher in matchers, f"{metric} in {expr!r} lacks {matcher}"
            if metric in OWN_CLUSTER_LABEL:
                assert "cluster=" not in matchers, f"{metric}'s own cluster label is not the Kubernetes cluster"


def test_the_kustomize_component_renders_the_rule_and_the_dashboard(tmp_path: Path) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed (the deployment tests need it too)")
    overlay = tmp_path / "deploy" / "overlay"
    shutil.copytree(OBSERVABILITY, tmp_path / "deploy" / "observability")
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: aiorch\n"
        "components: [../observability]\n"
    )
    result = subprocess.run(
        [kubectl, "kustomize", str(overlay)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    resources = {(r["kind"], r["metadata"]["name"]): r for r in yaml.safe_load_all(result.stdout)}
    assert set(resources) == {("PrometheusRule", "aiorch"), ("ConfigMap", "aiorch-grafana-dashboard")}
    dashboard = resources["ConfigMap", "aiorch-grafana-dashboard"]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["aiorch.json"]) == json.loads(DASHBOARD.read_text())
    assert resources["PrometheusRule", "aiorch"]["spec"]["groups"] == rule_groups()


def test_metric_names_are_found_in_promql() -> None:
    expr = (
        "histogram_quantile(0.99, sum by (grpc_service, le) (rate(grpc_server_handling_seconds_bucket"
        '{grpc_type="unary", grpc_service=~"aiorch\\\\..*"}[$__rate_interval])))'
        " > 1 and on (type) max(aiorch_queue_depth) unless up"
    )
    assert promql_metric_names(expr) == {"grpc_server_handling_seconds_bucket", "aiorch_queue_depth", "up"}


# Keep the imports above: they register the metrics exported_metric_names() reads.
_ = (services.common.metrics, services.common.outbox, services.jobs.job_metrics, services.workers.worker_metrics)
