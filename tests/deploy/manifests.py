"""Rendering the kustomize overlays and reading the result, for the deployment tests."""

from __future__ import annotations

import importlib
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

# PyYAML and kubernetes-validate ship no type information; loaded as Any so mypy --strict needs no
# stubs or overrides for them.
yaml: Any = importlib.import_module("yaml")
kubernetes_validate: Any = importlib.import_module("kubernetes_validate")

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
IMAGES = ROOT / "deploy" / "images"
# Every kustomization that must render: the base on its own and each overlay.
TARGETS = ("base", "overlays/dev", "overlays/prod")
OVERLAYS = ("overlays/dev", "overlays/prod")
KUBERNETES_VERSION = "1.32.0"
# Custom resources: not in the Kubernetes schemas, and no installable package ships their CRDs here.
CRD_KINDS = {
    ("keda.sh/v1alpha1", "ScaledObject"),
    ("monitoring.coreos.com/v1", "PodMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("postgresql.cnpg.io/v1", "Cluster"),
    ("postgresql.cnpg.io/v1", "Pooler"),
    ("postgresql.cnpg.io/v1", "ScheduledBackup"),
    ("barmancloud.cnpg.io/v1", "ObjectStore"),
    ("cert-manager.io/v1", "Certificate"),
}
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "Job")

Manifest = dict[str, Any]


def kubectl() -> str | None:
    """Path of kubectl, or None when it is not installed."""
    return shutil.which("kubectl")


@cache
def render(target: str) -> tuple[Manifest, ...]:
    """The resources `kubectl kustomize deploy/k8s/<target>` prints."""
    binary = kubectl()
    assert binary is not None
    result = subprocess.run(
        [binary, "kustomize", str(K8S / target)], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, f"kubectl kustomize {target} failed:\n{result.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def of_kind(docs: tuple[Manifest, ...], *kinds: str) -> list[Manifest]:
    """The resources of the given kinds."""
    return [d for d in docs if d["kind"] in kinds]


def named(docs: tuple[Manifest, ...], kind: str, name: str) -> Manifest:
    """The one resource of `kind` called `name`."""
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def pod_spec(workload: Manifest) -> Manifest:
    """The pod template spec of a Deployment, StatefulSet or Job."""
    spec: Manifest = workload["spec"]["template"]["spec"]
    return spec


def pod_labels(workload: Manifest) -> dict[str, str]:
    """The labels of a workload's pods."""
    labels: dict[str, str] = workload["spec"]["template"]["metadata"].get("labels", {})
    return labels


@dataclass(frozen=True)
class Container:
    """One container of a workload, with what the tests ask of it."""

    workload: Manifest
    spec: Manifest

    @property
    def name(self) -> str:
        return f"{self.workload['kind']}/{self.workload['metadata']['name']}/{self.spec['name']}"

    @property
    def args(self) -> list[str]:
        return [str(a) for a in self.spec.get("command", []) + self.spec.get("args", [])]

    def ports(self) -> dict[str, int]:
        """Container ports by name."""
        return {p["name"]: int(p["containerPort"]) for p in self.spec.get("ports", []) if "name" in p}

    def env(self, docs: tuple[Manifest, ...]) -> dict[str, Manifest]:
        """Every variable the container gets: envFrom ConfigMaps first, then env (which wins)."""
        found: dict[str, Manifest] = {}
        for source in self.spec.get("envFrom", []):
            if "configMapRef" in source:
                config = named(docs, "ConfigMap", source["configMapRef"]["name"])
                for key, value in config.get("data", {}).items():
                    found[key] = {"name": key, "value": value}
            if "secretRef" in source:
                found[f"<secret {source['secretRef']['name']}>"] = {}
        for variable in self.spec.get("env", []):
            found[variable["name"]] = variable
        return found

    def value(self, docs: tuple[Manifest, ...], variable: str) -> str | None:
        """The literal value of a variable, or None when unset or taken from a Secret."""
        entry = self.env(docs).get(variable)
        return None if entry is None or "value" not in entry else str(entry["value"])

    def mounts(self) -> dict[str, Manifest]:
        """Volume mounts by mount path, each joined with its volume."""
        volumes = {v["name"]: v for v in pod_spec(self.workload).get("volumes", [])}
        return {m["mountPath"]: {**m, "volume": volumes[m["name"]]} for m in self.spec.get("volumeMounts", [])}


def containers(docs: tuple[Manifest, ...], *, init: bool = True) -> Iterator[Container]:
    """Every container (and init container) of every workload."""
    for workload in of_kind(docs, *WORKLOAD_KINDS):
        spec = pod_spec(workload)
        for c in spec.get("containers", []) + (spec.get("initContainers", []) if init else []):
            yield Container(workload, c)


def aiorch_containers(docs: tuple[Manifest, ...]) -> Iterator[Container]:
    """The containers that run the `aiorch` command (services, workers, admin Jobs); not the gateway's
    renderer, which runs gateway/render.py from the services image."""
    for c in containers(docs):
        if c.workload["metadata"]["name"] == "gateway":
            continue
        if "/aiorch" in c.spec["image"].rsplit(":", 1)[0]:
            yield c


def selects(selector: Manifest, labels: dict[str, str]) -> bool:
    """Whether a Kubernetes label selector (matchLabels, matchExpressions) selects `labels`."""
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": labels.get(key) not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


def gateway_containers(docs: tuple[Manifest, ...]) -> tuple[Container, Container]:
    """The gateway Deployment's Envoy container, and the init container that renders its configuration
    (which therefore holds every AIORCH_GATEWAY_* variable)."""
    deployment = named(docs, "Deployment", "gateway")
    (envoy,) = pod_spec(deployment)["containers"]
    renderer = next(c for c in pod_spec(deployment)["initContainers"] if c["name"] == "render-config")
    return Container(deployment, envoy), Container(deployment, renderer)
