"""The kustomize overlays render, and every resource validates against its schema."""

from __future__ import annotations

import pytest

from tests.deploy.manifests import (
    CRD_KINDS,
    KUBERNETES_VERSION,
    OVERLAYS,
    TARGETS,
    Manifest,
    kubectl,
    kubernetes_validate,
    named,
    render,
)

pytestmark = pytest.mark.skipif(kubectl() is None, reason="kubectl is not installed: the manifests cannot be rendered")

# Cluster-scoped kinds; everything else must land in the aiorch namespace.
CLUSTER_SCOPED = {"Namespace", "PriorityClass"}


@pytest.mark.parametrize("target", TARGETS)
def test_renders(target: str) -> None:
    docs = render(target)
    assert docs, f"{target} rendered nothing"
    for doc in docs:
        assert {"apiVersion", "kind", "metadata"} <= doc.keys()
        if doc["kind"] not in CLUSTER_SCOPED:
            assert doc["metadata"].get("namespace") == "aiorch", f"{doc['kind']}/{doc['metadata']['name']}"
    names = [(d["kind"], d["metadata"]["name"]) for d in docs]
    assert len(names) == len(set(names)), f"duplicate resources in {target}"


@pytest.mark.parametrize("target", TARGETS)
def test_builtin_kinds_validate_strictly(target: str) -> None:
    """Every built-in resource validates against the Kubernetes 1.32 schema; unknown fields fail."""
    failures = []
    for doc in render(target):
        if (doc["apiVersion"], doc["kind"]) in CRD_KINDS:
            continue
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            failures.append(f"{doc['apiVersion']} {doc['kind']}: no schema (a typo, or a CRD missing from CRD_KINDS)")
        except kubernetes_validate.ValidationError as exc:
            failures.append(f"{doc['kind']}/{doc['metadata']['name']}: {exc.message} at {list(exc.absolute_path)}")
    assert not failures, "\n".join(failures)


def _custom(target: str) -> list[Manifest]:
    return [d for d in render(target) if (d["apiVersion"], d["kind"]) in CRD_KINDS]


@pytest.mark.parametrize("target", TARGETS)
def test_custom_resources_have_their_required_fields(target: str) -> None:
    """No package ships the KEDA, Prometheus Operator or CloudNativePG CRD schemas here, so the
    fields those operators require (and the references they make) are checked by hand."""
    docs = render(target)
    for doc in _custom(target):
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        spec = doc.get("spec")
        assert isinstance(spec, dict), where
        if doc["kind"] == "ScaledObject":
            target_ref = spec["scaleTargetRef"]
            assert target_ref.get("kind", "Deployment") == "Deployment", where
            named(docs, "Deployment", target_ref["name"])
            assert 0 <= spec["minReplicaCount"] <= spec["maxReplicaCount"], where
            assert spec["triggers"], where
            for trigger in spec["triggers"]:
                assert trigger["type"] == "nats-jetstream", where
                meta = trigger["metadata"]
                for key in ("natsServerMonitoringEndpoint", "account", "stream", "consumer", "lagThreshold"):
                    assert isinstance(meta.get(key), str) and meta[key], f"{where}: {key}"
                assert int(meta["lagThreshold"]) > 0, where
        elif doc["kind"] in ("PodMonitor", "ServiceMonitor"):
            assert isinstance(spec["selector"], dict), where
            endpoints = spec["podMetricsEndpoints" if doc["kind"] == "PodMonitor" else "endpoints"]
            assert endpoints, where
            for endpoint in endpoints:
                assert isinstance(endpoint.get("port"), str), f"{where}: endpoints name their port"
        elif doc["kind"] == "Cluster":
            assert spec["instances"] >= 1, where
            assert spec["storage"]["size"], where
            assert ":" in spec["imageName"], f"{where}: pin the PostgreSQL image"
            assert spec["bootstrap"]["initdb"]["database"] == "aiorch", where


def test_prod_needs_no_committed_secrets() -> None:
    """Production references Secrets created out of band; the signing keys are never rendered."""
    assert not [d for d in render("overlays/prod") if d["kind"] == "Secret"]
    for target in OVERLAYS:
        for doc in render(target):
            if doc["kind"] == "Secret":
                assert doc["metadata"]["name"] != "aiorch-jwt", "the token signing keys must not be in git"
                assert doc["metadata"]["labels"].get("aiorch.io/dev-placeholder") == "true"
