"""The prod overlay's PostgreSQL: backups to object storage on a schedule with a retention policy, a restore
component that bootstraps from them, optional synchronous replication, a PgBouncer Pooler in front of the
primary, and a connection budget that fits: every database client's max replicas x its pool fits the
pooler, and the poolers' server connections fit the Cluster's max_connections."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from services.common.config import ServiceSettings
from tests.deploy.manifests import (
    K8S,
    Container,
    Manifest,
    containers,
    kubectl,
    named,
    of_kind,
    render,
    yaml,
)

pytestmark = pytest.mark.skipif(kubectl() is None, reason="kubectl is not installed: the manifests cannot be rendered")

PROD = "overlays/prod"
CLUSTER = "aiorch-pg"
POOLER = "aiorch-pg-pooler-rw"
BARMAN_PLUGIN = "barman-cloud.cloudnative-pg.io"
# PostgreSQL's default superuser_reserved_connections, plus CloudNativePG's own connections (instance
# manager, replication slots' walsenders: one per replica, the metrics exporter) with room to spare.
RESERVED_CONNECTIONS = 3 + 10
# What one admin Job opens: the CLI's make_engine(url, 1) (pool 1 + overflow 1); Alembic's own engine
# holds one connection for the whole migration.
ADMIN_JOB_CONNECTIONS = 2


def _prod() -> tuple[Manifest, ...]:
    return render(PROD)


def _cluster(docs: tuple[Manifest, ...]) -> Manifest:
    return named(docs, "Cluster", CLUSTER)


def _render_with_component(component: str, tmp_path: Path) -> tuple[Manifest, ...]:
    """The prod overlay with one more component, as an operator's own overlay would add it."""
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                # kustomize takes only relative paths.
                "resources": [os.path.relpath(K8S / PROD, overlay)],
                "components": [os.path.relpath(K8S / "components" / component, overlay)],
            }
        )
    )
    binary = kubectl()
    assert binary is not None
    result = subprocess.run(
        [binary, "kustomize", str(overlay)], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def test_wal_is_archived_to_an_object_store_with_a_retention_policy() -> None:
    docs = _prod()
    archivers = [p for p in _cluster(docs)["spec"].get("plugins", []) if p.get("isWALArchiver")]
    assert len(archivers) == 1, "the Cluster archives its WAL through exactly one plugin"
    assert archivers[0]["name"] == BARMAN_PLUGIN
    store = named(docs, "ObjectStore", archivers[0]["parameters"]["barmanObjectName"])
    assert re.fullmatch(r"\d+[dwm]", store["spec"]["retentionPolicy"]), "Barman's retention is <n>d|w|m"
    configuration = store["spec"]["configuration"]
    assert configuration["destinationPath"].startswith("s3://")
    credentials = configuration["s3Credentials"]
    for key in ("accessKeyId", "secretAccessKey"):
        assert credentials[key]["name"] and credentials[key]["key"], key
    assert not [d for d in docs if d["kind"] == "Secret"], "the bucket's credentials are created out of band"


def test_a_scheduled_backup_runs_every_day_through_the_plugin() -> None:
    docs = _prod()
    backups = of_kind(docs, "ScheduledBackup")
    assert backups, "no ScheduledBackup: the Cluster is never backed up"
    for backup in backups:
        spec = backup["spec"]
        assert spec["cluster"]["name"] == CLUSTER
        assert spec["method"] == "plugin" and spec["pluginConfiguration"]["name"] == BARMAN_PLUGIN
        # CloudNativePG's schedule has six fields (seconds first); a five-field one is rejected.
        fields = spec["schedule"].split()
        assert len(fields) == 6, spec["schedule"]
        assert fields[3:] == ["*", "*", "*"], "at least one base backup a day"


def test_the_restore_component_bootstraps_from_the_backups(tmp_path: Path) -> None:
    docs = _render_with_component("postgres-restore", tmp_path)
    spec = _cluster(docs)["spec"]
    assert "initdb" not in spec["bootstrap"], "recovery replaces initdb"
    recovery = spec["bootstrap"]["recovery"]
    assert recovery["database"] == "aiorch" and recovery["owner"] == "aiorch"
    source = next(c for c in spec["externalClusters"] if c["name"] == recovery["source"])
    assert source["plugin"]["name"] == BARMAN_PLUGIN
    archiver = next(p for p in spec["plugins"] if p.get("isWALArchiver"))
    # Read from the backups the ScheduledBackup wrote...
    assert source["plugin"]["parameters"]["barmanObjectName"] == archiver["parameters"]["barmanObjectName"]
    assert source["plugin"]["parameters"]["serverName"] == CLUSTER
    named(docs, "ObjectStore", source["plugin"]["parameters"]["barmanObjectName"])
    # ...and archive the restored cluster's WAL elsewhere: Barman refuses a folder holding another timeline.
    assert archiver["parameters"]["serverName"] != CLUSTER


def test_replication_is_asynchronous_by_default_and_synchronous_with_the_component(tmp_path: Path) -> None:
    assert "synchronous" not in _cluster(_prod())["spec"].get("postgresql", {})
    synchronous = _cluster(_render_with_component("postgres-synchronous", tmp_path))["spec"]
    replicas = synchronous["instances"] - 1
    sync = synchronous["postgresql"]["synchronous"]
    assert sync["method"] in ("any", "first")
    # A quorum of replicas that can lose one and still accept writes.
    assert 1 <= sync["number"] < replicas
    assert synchronous["postgresql"]["parameters"] == _cluster(_prod())["spec"]["postgresql"]["parameters"]


def _database_clients(docs: tuple[Manifest, ...]) -> list[Container]:
    return [c for c in containers(docs, init=False) if "DATABASE_URL" in c.env(docs)]


def _max_replicas(docs: tuple[Manifest, ...], workload: Manifest) -> int:
    """The most pods a workload can have: its HPA's or ScaledObject's maximum, else its replicas."""
    name = workload["metadata"]["name"]
    for hpa in of_kind(docs, "HorizontalPodAutoscaler"):
        if hpa["spec"]["scaleTargetRef"]["name"] == name:
            return int(hpa["spec"]["maxReplicas"])
    for scaled in of_kind(docs, "ScaledObject"):
        if scaled["spec"]["scaleTargetRef"]["name"] == name:
            return int(scaled["spec"]["maxReplicaCount"])
    if workload["kind"] == "Job":
        return int(workload["spec"].get("parallelism", 1))
    return int(workload["spec"].get("replicas", 1))


def _pool_connections(docs: tuple[Manifest, ...], container: Container) -> int:
    """The most connections one process opens: make_engine's pool_size plus as many as overflow."""
    if container.workload["kind"] == "Job":
        return ADMIN_JOB_CONNECTIONS
    configured = container.value(docs, "AIORCH_DB_POOL_SIZE")
    pool_size = int(configured) if configured is not None else ServiceSettings.model_fields["db_pool_size"].default
    return 2 * pool_size


def _host(docs: tuple[Manifest, ...], container: Container) -> str:
    """Where a client's DATABASE_URL points: the literal URL's host, or the CNPG Secret's (the -rw Service)."""
    url = container.value(docs, "DATABASE_URL")
    if url is not None:
        return urlsplit(url).hostname or ""
    secret = container.env(docs)["DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    assert secret == {"name": f"{CLUSTER}-app", "key": "uri"}, container.name
    return f"{CLUSTER}-rw"


def test_the_services_reach_the_database_through_the_pooler() -> None:
    docs = _prod()
    pooler = named(docs, "Pooler", POOLER)
    assert pooler["spec"]["cluster"]["name"] == CLUSTER
    assert pooler["spec"]["type"] == "rw"
    assert pooler["spec"]["instances"] >= 2, "one pooler pod is a single point of failure"
    # Transaction mode: safe with psycopg2 (client-side parameters, no server-side prepared statements).
    assert pooler["spec"]["pgbouncer"]["poolMode"] == "transaction"
    services = [c for c in _database_clients(docs) if c.workload["kind"] == "Deployment"]
    assert {c.workload["metadata"]["name"] for c in services} == {"auth", "projects", "jobs"}
    for container in services:
        assert _host(docs, container) == POOLER, container.name
        password = container.env(docs)["PGPASSWORD"]["valueFrom"]["secretKeyRef"]
        assert password == {"name": f"{CLUSTER}-app", "key": "password"}, container.name
    # The admin Jobs (migrations run DDL for minutes) go to the primary directly.
    for container in _database_clients(docs):
        if container.workload["kind"] == "Job":
            assert _host(docs, container) == f"{CLUSTER}-rw", container.name


def test_every_client_at_max_replicas_fits_the_connection_limits() -> None:
    docs = _prod()
    pooler = named(docs, "Pooler", POOLER)["spec"]
    parameters = pooler["pgbouncer"]["parameters"]
    through_pooler = direct = 0
    for container in _database_clients(docs):
        wanted = _max_replicas(docs, container.workload) * _pool_connections(docs, container)
        if _host(docs, container) == POOLER:
            through_pooler += wanted
        else:
            direct += wanted
    # The Service may send every client to the same pooler pod.
    assert through_pooler <= int(parameters["max_client_conn"]), (through_pooler, parameters)
    assert int(parameters["default_pool_size"]) <= int(parameters["max_db_connections"])
    server_side = pooler["instances"] * int(parameters["max_db_connections"])
    max_connections = int(_cluster(docs)["spec"]["postgresql"]["parameters"]["max_connections"])
    assert server_side + direct + RESERVED_CONNECTIONS <= max_connections, (server_side, direct, max_connections)
