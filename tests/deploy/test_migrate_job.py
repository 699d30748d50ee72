"""The migrate and bootstrap Jobs can be applied again and again: each release's Jobs are new objects (named
after the image tag, since a Job's pod template is immutable), the same release renders the same Jobs, and
GitOps tools run them before the rollout. The services themselves wait for their schema (not disabled here)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.deploy.manifests import K8S, OVERLAYS, Manifest, aiorch_containers, kubectl, of_kind, render, yaml

pytestmark = pytest.mark.skipif(kubectl() is None, reason="kubectl is not installed: the manifests cannot be rendered")

ADMIN_JOBS = ("aiorch-migrate", "aiorch-bootstrap-admin")


def _with_tag(overlay: str, tag: str, tmp_path: Path) -> tuple[Manifest, ...]:
    """`overlay` as a release would change it: a copy of deploy/ whose overlay sets a new aiorch tag."""
    deploy = tmp_path / tag / "deploy"
    shutil.copytree(K8S.parent, deploy)
    kustomization_file = deploy / "k8s" / overlay / "kustomization.yaml"
    kustomization = yaml.safe_load(kustomization_file.read_text())
    for image in kustomization["images"]:
        image["newTag"] = tag
    kustomization_file.write_text(yaml.safe_dump(kustomization, sort_keys=False))
    binary = kubectl()
    assert binary is not None
    result = subprocess.run(
        [binary, "kustomize", str(kustomization_file.parent)], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def _jobs(docs: tuple[Manifest, ...]) -> dict[str, Manifest]:
    return {job["metadata"]["name"]: job for job in of_kind(docs, "Job")}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_release_gets_new_jobs_and_the_same_release_the_same(overlay: str, tmp_path: Path) -> None:
    current = _jobs(render(overlay))
    tag = yaml.safe_load((K8S / overlay / "kustomization.yaml").read_text())["images"][0]["newTag"]
    assert sorted(current) == sorted(f"{job}-{tag}" for job in ADMIN_JOBS)
    for name in current:
        assert len(name) <= 63, f"{name}: the job-name label of its pods holds 63 characters at most"
    assert _jobs(_with_tag(overlay, tag, tmp_path)) == current, "applying the same release again changes a Job"
    upgraded = _jobs(_with_tag(overlay, "0.2.0", tmp_path))
    assert sorted(upgraded) == sorted(f"{job}-0.2.0" for job in ADMIN_JOBS)
    assert not set(upgraded) & set(current), "an upgrade would change an existing Job's template: field is immutable"
    for job in upgraded.values():
        assert job["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":0.2.0")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_gitops_tools_run_the_jobs_before_the_rollout(overlay: str) -> None:
    for job in of_kind(render(overlay), "Job"):
        annotations = job["metadata"]["annotations"]
        assert annotations["argocd.argoproj.io/hook"] == "PreSync", job["metadata"]["name"]
        assert annotations["argocd.argoproj.io/hook-delete-policy"] == "BeforeHookCreation"
        assert annotations["kustomize.toolkit.fluxcd.io/force"] == "enabled"
        assert job["spec"]["ttlSecondsAfterFinished"] > 0


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_service_skips_the_schema_check(overlay: str) -> None:
    docs = render(overlay)
    for container in aiorch_containers(docs):
        if container.args[:1] == ["serve"]:
            wait = container.value(docs, "AIORCH_SCHEMA_WAIT_SECONDS")
            assert wait is None or float(wait) > 0, container.name
