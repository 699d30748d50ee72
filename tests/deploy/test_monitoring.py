"""The monitoring of the rendered prod overlay sees what the alert rules assume: every PodMonitor the
target-down alert names exists and selects pods with the port it scrapes, the NATS exporter reports JetStream's
servers, streams and consumers, the database the CloudNativePG alerts read is the one the overlay runs, and the
backup schedule fits the backup-age threshold."""

from __future__ import annotations

import re

import pytest

from tests.deploy.manifests import containers, kubectl, named, of_kind, pod_labels, pod_spec, render, selects, yaml
from tests.observability_config import RULES, alert_rules, rule_groups

pytestmark = pytest.mark.skipif(kubectl() is None, reason="kubectl is not installed: the manifests cannot be rendered")

PROD = "overlays/prod"


def _alert(name: str) -> dict[str, str]:
    return next(rule for rule in alert_rules() if rule["alert"] == name)


def test_prod_carries_the_rules_and_the_dashboard_as_written() -> None:
    docs = render(PROD)
    rule = named(docs, "PrometheusRule", "aiorch")
    assert rule["metadata"]["namespace"] == "aiorch"
    assert rule["spec"]["groups"] == rule_groups() == yaml.safe_load(RULES.read_text())["spec"]["groups"]
    assert named(docs, "ConfigMap", "aiorch-grafana-dashboard")["metadata"]["labels"]["grafana_dashboard"] == "1"


def test_the_target_down_alert_names_exactly_the_podmonitors_of_prod_and_each_selects_its_pods() -> None:
    docs = render(PROD)
    monitors = {monitor["metadata"]["name"]: monitor for monitor in of_kind(docs, "PodMonitor")}
    match = re.search(r'job=~"\[\^/\]\+/\(([^)]*)\)"', _alert("AiorchTargetDown")["expr"])
    assert match, "AiorchTargetDown selects its jobs by PodMonitor name"
    # The Prometheus Operator names a PodMonitor's job "<namespace>/<name>".
    assert set(match.group(1).split("|")) == set(monitors)
    workloads = of_kind(docs, "Deployment", "StatefulSet")
    for name, monitor in monitors.items():
        assert monitor["metadata"]["labels"]["aiorch.io/monitoring"] == "true", name
        ports = {endpoint["port"] for endpoint in monitor["spec"]["podMetricsEndpoints"]}
        cnpg_pods = {
            "aiorch-pg": {"cnpg.io/cluster": "aiorch-pg"},
            "aiorch-pg-pooler": {"cnpg.io/poolerName": "aiorch-pg-pooler-rw"},
        }
        if name in cnpg_pods:
            # CloudNativePG's pods (instances and poolers, each with a port named "metrics"), not workloads here.
            assert monitor["spec"]["selector"]["matchLabels"] == cnpg_pods[name], name
            assert ports == {"metrics"}, name
            continue
        scraped = [w for w in workloads if selects(monitor["spec"]["selector"], pod_labels(w))]
        assert scraped, f"PodMonitor {name} selects no pod"
        for workload in scraped:
            named_ports = {
                port["name"]
                for container in pod_spec(workload)["containers"]
                for port in container.get("ports", [])
                if "name" in port
            }
            assert ports <= named_ports, f"{workload['metadata']['name']} lacks the port {name} scrapes"


def test_the_nats_exporter_reports_what_the_jetstream_alerts_read() -> None:
    docs = render(PROD)
    exporter = next(c for c in containers(docs) if c.name == "StatefulSet/nats/exporter")
    assert "-jsz=all" in exporter.args, "servers, streams and consumers (the leader and redelivery alerts)"
    assert "-varz" in exporter.args, "gnatsd_varz_connections of the dashboard"
    assert exporter.ports()["metrics"] == 7777
    # jetstream_server_max_storage is max_file_store: the storage alert's denominator must be set.
    config = named(docs, "ConfigMap", "nats-config")["data"]["nats.conf"]
    assert re.search(r"max_file_store:\s*\d+G", config)


def test_the_postgres_alerts_read_the_cluster_prod_runs_and_its_daily_backup() -> None:
    docs = render(PROD)
    cluster = named(docs, "Cluster", "aiorch-pg")
    assert cluster["spec"]["instances"] >= 2, "replication lag needs replicas"
    assert any(plugin["name"] == "barman-cloud.cloudnative-pg.io" for plugin in cluster["spec"]["plugins"])
    backups = of_kind(docs, "ScheduledBackup")
    assert len(backups) == 1
    # Six fields (seconds first): daily at a fixed time, so the newest backup is at most 24 h old when healthy.
    _seconds, minutes, hours, day, month, weekday = backups[0]["spec"]["schedule"].split()
    assert (day, month, weekday) == ("*", "*", "*") and hours.isdigit() and minutes.isdigit()
    assert "26 * 3600" in _alert("AiorchPostgresBackupTooOld")["expr"]
    max_connections = cluster["spec"]["postgresql"]["parameters"]["max_connections"]
    assert f"({max_connections} in prod)" in (RULES.parents[2] / "docs" / "operations.md").read_text()
