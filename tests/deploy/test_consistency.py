"""The manifests agree with the code: ports, settings, job types, consumers, hardening."""

from __future__ import annotations

import ipaddress
import os
import re
import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest
from pydantic_settings import BaseSettings

from gateway import render as gateway_render
from services.common import config, messaging, nats_permissions
from services.common.metrics_server import HEALTH_PATH
from services.workers.engines.registry import ENGINES
from services.workers.main import HAND_BACK_SECONDS
from tests.deploy.manifests import (
    OVERLAYS,
    ROOT,
    TARGETS,
    WORKLOAD_KINDS,
    Container,
    Manifest,
    aiorch_containers,
    containers,
    gateway_containers,
    kubectl,
    named,
    of_kind,
    pod_labels,
    pod_spec,
    render,
    selects,
)

pytestmark = pytest.mark.skipif(kubectl() is None, reason="kubectl is not installed: the manifests cannot be rendered")

SERVICE_SETTINGS: dict[str, type[config.ServiceSettings]] = {
    "auth": config.AuthSettings,
    "projects": config.ProjectsSettings,
    "jobs": config.JobsSettings,
}
# Job types that run on GPUs in prod: those whose engine runs Whisper (checked in tests/deploy/test_scaling.py).
GPU_TYPES = {"STT", "DUBBING"}
# Variables read outside the settings classes, each by the code that must read it (checked below).
EXTRA_VARIABLES = {
    "AIORCH_ADMIN_PASSWORD": ("services/cli/main.py", "bootstrap-admin"),
    "AIORCH_NEW_PASSWORD": ("services/cli/main.py", "create-user"),
    "AIORCH_WORKER_STT_MODEL_PATH": ("services/workers/engines", "worker"),
    "AIORCH_WORKER_STT_DEVICE": ("services/workers/engines", "worker"),
}


def env_names(settings: type[BaseSettings]) -> set[str]:
    """The environment variables a settings class reads: AIORCH_<FIELD> or its alias choices."""
    prefix = str(settings.model_config.get("env_prefix", ""))
    names = set()
    for field_name, field in settings.model_fields.items():
        alias = field.validation_alias
        choices = getattr(alias, "choices", None)
        if choices:
            names |= {str(c) for c in choices}
        elif isinstance(alias, str):
            names.add(alias)
        else:
            names.add(f"{prefix}{field_name}".upper())
    return names


def settings_of(container: Container) -> type[BaseSettings]:
    """The settings class the container's `aiorch` command reads."""
    args = container.args
    assert args, f"{container.name}: the image's entry point is `aiorch`; give the subcommand as args"
    match args[0]:
        case "serve":
            return SERVICE_SETTINGS[args[1]]
        case "worker":
            return config.WorkerSettings
        case "migrate":
            return config.ServiceSettings
        case "bootstrap-admin" | "create-user" | "set-password" | "set-role":
            return config.AuthSettings
    raise AssertionError(f"{container.name}: unknown aiorch command {args}")


def service_container(docs: tuple[Manifest, ...], service: str) -> Container:
    deployment = named(docs, "Deployment", service)
    (spec,) = pod_spec(deployment)["containers"]
    return Container(deployment, spec)


def worker_type(container: Container) -> str:
    args = container.args
    return args[args.index("--types") + 1].upper()


def workers(docs: tuple[Manifest, ...]) -> list[Container]:
    return [c for c in aiorch_containers(docs) if c.args[:1] == ["worker"]]


def int_setting(container: Container, docs: tuple[Manifest, ...], variable: str, default: int) -> int:
    value = container.value(docs, variable)
    return default if value is None else int(value)


# ---- ports ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("service", sorted(SERVICE_SETTINGS))
def test_service_ports_and_probes_match_the_configured_ports(target: str, service: str) -> None:
    docs = render(target)
    c = service_container(docs, service)
    settings = SERVICE_SETTINGS[service]
    grpc_port = int_setting(c, docs, "AIORCH_GRPC_PORT", settings.model_fields["grpc_port"].default)
    assert grpc_port == settings.model_fields["grpc_port"].default, f"{service} moved off its default gRPC port"
    metrics_port = int_setting(c, docs, "AIORCH_METRICS_PORT", settings.model_fields["metrics_port"].default)
    expected = {"grpc": grpc_port, "metrics": metrics_port}
    if "http_port" in settings.model_fields:
        # The jobs service's HTTP edge, which the gateway dials on the same Service.
        http_port = int_setting(c, docs, "AIORCH_HTTP_PORT", settings.model_fields["http_port"].default)
        assert http_port == gateway_render.DEFAULT_EDGE_PORT
        expected["http"] = http_port
    assert c.ports() == expected
    assert c.args == ["serve", service]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert c.spec[probe]["grpc"]["port"] == grpc_port, f"{service} {probe} must be a native gRPC probe"
    # The Service reaches the gRPC port and is what the gateway and other services dial.
    svc = named(docs, "Service", service)
    port, *others = svc["spec"]["ports"]
    assert port["port"] == grpc_port and port["targetPort"] in ("grpc", grpc_port)
    edge = [(expected["http"], "http")] if "http" in expected else []
    assert [(p["port"], p["targetPort"]) for p in others] == edge
    assert selects({"matchLabels": svc["spec"]["selector"]}, pod_labels(c.workload))
    assert gateway_render.DEFAULT_PORTS[service] == grpc_port


def _gateway_default(variable: str) -> str:
    source = Path(gateway_render.__file__).read_text()
    match = re.search(rf'env\.get\("{variable}", "([^"]*)"\)', source)
    assert match, f"gateway/render.py no longer reads {variable} with a default"
    return match.group(1)


@pytest.mark.parametrize("target", TARGETS)
def test_gateway_ports_upstreams_and_files_match_render(target: str) -> None:
    docs = render(target)
    c, renderer = gateway_containers(docs)
    spec = c.spec

    def setting(variable: str) -> str:
        value = renderer.value(docs, variable)
        return _gateway_default(variable) if value is None else value

    listen, stats = int(setting("AIORCH_GATEWAY_PORT")), int(setting("AIORCH_GATEWAY_STATS_PORT"))
    # The admin interface binds loopback and is no container port; probes and Prometheus use the stats listener.
    assert stats, "probes and Prometheus need the stats listener"
    # With TLS (prod) the listener is `https` and `http` only redirects to it (tests/deploy/test_gateway_tls.py).
    public = (
        {"https": listen, "http": int(setting("AIORCH_GATEWAY_HTTP_REDIRECT_PORT"))}
        if renderer.value(docs, "AIORCH_GATEWAY_TLS_CERT_FILE")
        else {"http": listen}
    )
    assert c.ports() == {**public, "stats": stats}
    assert spec["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "stats"}
    assert "livenessProbe" in spec
    svc = named(docs, "Service", "gateway")
    assert sorted(p["targetPort"] for p in svc["spec"]["ports"]) == sorted(public), "the stats port stays off"
    # Each upstream is a Service of the manifests, on the port that service listens on.
    for name in gateway_render.KNOWN_UPSTREAMS:
        host = renderer.value(docs, f"AIORCH_GATEWAY_{name.upper()}_HOST") or name
        port = int(renderer.value(docs, f"AIORCH_GATEWAY_{name.upper()}_PORT") or gateway_render.DEFAULT_PORTS[name])
        assert host == name
        upstream = named(docs, "Service", host)["spec"]
        assert upstream["ports"][0]["port"] == port
        # Envoy's STRICT_DNS must see the pods themselves to balance and health-check each one.
        assert upstream.get("clusterIP") == "None", f"{host}: make the Service headless"
    # The jobs service's HTTP edge, on its Service's `http` port.
    edge_host = setting("AIORCH_GATEWAY_JOBS_HTTP_HOST")
    edge_ports = {p["name"]: p["port"] for p in named(docs, "Service", edge_host)["spec"]["ports"]}
    assert edge_ports["http"] == int(setting("AIORCH_GATEWAY_JOBS_HTTP_PORT")) == gateway_render.DEFAULT_EDGE_PORT
    # The JWKS comes from the keys Secret; the descriptor set is in the image; envoy.yaml is written at start.
    mounts = c.mounts()
    jwks = PurePosixPath(setting("AIORCH_GATEWAY_JWKS"))
    keys = mounts[str(jwks.parent)]["volume"]["secret"]
    assert keys["secretName"] == "aiorch-jwt"
    assert jwks.name in [item["path"] for item in keys["items"]]
    # The renderer writes envoy.yaml into the emptyDir Envoy reads, from the web files the gateway image
    # copied into another before it.
    assert "emptyDir" in mounts["/etc/envoy"]["volume"]
    assert renderer.mounts()["/etc/envoy"]["name"] == mounts["/etc/envoy"]["name"]
    assert renderer.spec["command"][:3] == ["python", "-m", "gateway.render"]
    assert renderer.spec["command"][-1] == "/etc/envoy/envoy.yaml"
    dockerfile = (ROOT / "deploy/images/gateway.Dockerfile").read_text()
    assert setting("AIORCH_GATEWAY_DESCRIPTOR") in dockerfile
    assert '"-c", "/etc/envoy/envoy.yaml"' in dockerfile
    init = [container["name"] for container in pod_spec(c.workload)["initContainers"]]
    assert init == ["static-files", "render-config"], "the files are copied before they are rendered"
    static = pod_spec(c.workload)["initContainers"][0]
    site_root = setting("AIORCH_GATEWAY_STATIC_SITES").split("=", 1)[1]
    copied_to = static["command"][-1].rstrip("/")
    assert copied_to == site_root
    web = next(m for m in static["volumeMounts"] if m["mountPath"] == site_root)["name"]
    assert renderer.mounts()[site_root]["name"] == web
    assert static["image"].rsplit(":", 1)[0] == "ghcr.io/aiorch/aiorch-gateway"


def _render_variables() -> set[str]:
    source = Path(gateway_render.__file__).read_text()
    names = set(re.findall(r'"(AIORCH_[A-Z_]+)"', source))
    names |= {f"AIORCH_GATEWAY_{name.upper()}" for name in vars(gateway_render.GatewayLimits())}
    for name in gateway_render.KNOWN_UPSTREAMS:
        names |= {f"AIORCH_GATEWAY_{name.upper()}_HOST", f"AIORCH_GATEWAY_{name.upper()}_PORT"}
    return names


# ---- settings -----------------------------------------------------------------------------------------


def test_extra_variables_are_read_by_the_code() -> None:
    for variable, (where, _) in EXTRA_VARIABLES.items():
        path = ROOT / where
        files = [path] if path.is_file() else list(path.rglob("*.py"))
        assert any(variable in f.read_text() for f in files), f"{variable} is no longer read in {where}"


@pytest.mark.parametrize("target", TARGETS)
def test_every_variable_set_is_a_setting_of_that_process(target: str) -> None:
    """A misspelt or foreign AIORCH_* variable would be silently ignored by pydantic-settings."""
    docs = render(target)
    gateway_names = _render_variables()
    for c in containers(docs):
        if c.workload["metadata"]["name"] == "gateway":
            allowed = gateway_names
        elif c in list(aiorch_containers(docs)):
            command = c.args[0]
            allowed = env_names(settings_of(c)) | {v for v, (_, cmd) in EXTRA_VARIABLES.items() if cmd == command}
        else:
            continue
        for variable in c.env(docs):
            if variable.startswith("AIORCH_") or variable in ("DATABASE_URL", "NATS_URL"):
                assert variable in allowed, f"{c.name} sets {variable}, which its process does not read"


@pytest.mark.parametrize("target", TARGETS)
def test_variables_without_a_usable_default_are_set(target: str) -> None:
    """The defaults point at 127.0.0.1 (the local stack); in a pod they must be set."""
    docs = render(target)
    for c in aiorch_containers(docs):
        env = c.env(docs)
        settings = settings_of(c)
        if issubclass(settings, config.ServiceSettings):
            assert "DATABASE_URL" in env, f"{c.name}: DATABASE_URL"
        reads_nats = settings is config.WorkerSettings or settings in (
            config.AuthSettings,
            config.ProjectsSettings,
            config.JobsSettings,
        )
        if reads_nats and c.args[0] in ("serve", "worker"):
            assert "NATS_URL" in env, f"{c.name}: NATS_URL"
    jobs = service_container(docs, "jobs")
    projects_port = named(docs, "Service", "projects")["spec"]["ports"][0]["port"]
    assert jobs.value(docs, "AIORCH_PROJECTS_ADDRESS") == f"projects:{projects_port}"
    auth = service_container(docs, "auth")
    proxies = auth.value(docs, "AIORCH_TRUSTED_PROXIES") or ""
    networks = [ipaddress.ip_network(n.strip()) for n in proxies.split(",") if n.strip()]
    assert any(n.is_private and not n.is_loopback and n.prefixlen <= 16 for n in networks), (
        "AIORCH_TRUSTED_PROXIES must include the pod network, or every login through Envoy counts against it"
    )


@pytest.mark.parametrize("target", TARGETS)
def test_key_files_are_mounted_where_the_services_read_them(target: str) -> None:
    docs = render(target)
    for service, settings in SERVICE_SETTINGS.items():
        c = service_container(docs, service)
        wanted = ["jwt_public_key_file"] + (["jwt_private_key_file"] if service == "auth" else [])
        for field_name in wanted:
            default = str(settings.model_fields[field_name].default)
            path = PurePosixPath(c.value(docs, f"AIORCH_{field_name.upper()}") or default)
            mount = c.mounts()[str(path.parent)]
            assert mount["volume"]["secret"]["secretName"] == "aiorch-jwt", f"{service}: {field_name}"
            assert path.name in [i["path"] for i in mount["volume"]["secret"]["items"]], f"{service}: {path}"


@pytest.mark.parametrize("target", OVERLAYS)
def test_jobs_and_workers_share_one_blob_store(target: str) -> None:
    docs = render(target)
    sharing = [service_container(docs, "jobs"), *workers(docs)]
    backends = {c.value(docs, "AIORCH_BLOB_BACKEND") for c in sharing}
    assert len(backends) == 1 and None not in backends, f"blob backends differ or are unset: {backends}"
    backend = backends.pop()
    for c in sharing:
        if backend == "local":
            default = str(config.BlobStoreSettings.model_fields["blob_dir"].default)
            mount = c.mounts()[c.value(docs, "AIORCH_BLOB_DIR") or default]
            claim = mount["volume"]["persistentVolumeClaim"]["claimName"]
            pvc = named(docs, "PersistentVolumeClaim", claim)
            assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
        else:
            assert "AIORCH_S3_BUCKET" in c.env(docs), c.name


# ---- workers, queues, autoscaling ---------------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_one_worker_deployment_per_job_type(target: str) -> None:
    docs = render(target)
    types = sorted(worker_type(c) for c in workers(docs))
    assert types == sorted(ENGINES)
    for c in workers(docs):
        assert c.workload["kind"] == "Deployment"
        assert c.workload["metadata"]["name"] == "worker-" + worker_type(c).lower().replace("_", "-")
        assert pod_labels(c.workload)["app.kubernetes.io/component"] == "worker"
        assert "grpc" not in c.ports(), "workers serve no gRPC"
        metrics_port = int_setting(c, docs, "AIORCH_METRICS_PORT", config.ProcessSettings().metrics_port)
        assert c.ports() == {"metrics": metrics_port}
        # /healthz on the metrics port says whether the consumers still fetch (services/workers/liveness.py).
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert c.spec[probe]["httpGet"]["port"] in ("metrics", metrics_port)
            assert c.spec[probe]["httpGet"]["path"] == HEALTH_PATH


def test_prod_gpu_pools_request_gpus_and_land_on_gpu_nodes() -> None:
    docs = render("overlays/prod")
    for c in workers(docs):
        spec = pod_spec(c.workload)
        limits = c.spec["resources"].get("limits", {})
        if worker_type(c) in GPU_TYPES:
            assert int(limits["nvidia.com/gpu"]) >= 1, c.name
            assert spec["nodeSelector"], c.name
            assert any(t["key"] == "nvidia.com/gpu" for t in spec["tolerations"]), c.name
            assert "aiorch-worker-gpu" in c.spec["image"], c.name
        else:
            assert "nvidia.com/gpu" not in limits, c.name


def test_dev_runs_everything_on_cpu_with_single_replicas() -> None:
    docs = render("overlays/dev")
    for workload in of_kind(docs, "Deployment", "StatefulSet"):
        assert workload["spec"].get("replicas", 1) == 1, workload["metadata"]["name"]
    for c in containers(docs):
        assert "nvidia.com/gpu" not in str(c.spec.get("resources")), c.name
        assert "gpu" not in c.spec["image"], c.name


def test_prod_scales_every_worker_pool_on_its_consumer_lag() -> None:
    docs = render("overlays/prod")
    scaled = {s["spec"]["scaleTargetRef"]["name"]: s for s in of_kind(docs, "ScaledObject")}
    nats = named(docs, "StatefulSet", "nats")
    nats_conf = named(docs, "ConfigMap", "nats-config")["data"]["nats.conf"]
    monitor_port = int(re.search(r"http_port:\s*(\d+)", nats_conf).group(1))  # type: ignore[union-attr]
    for c in workers(docs):
        job_type = worker_type(c)
        deployment = c.workload["metadata"]["name"]
        assert "replicas" not in c.workload["spec"], f"{deployment}: KEDA owns the replica count"
        (trigger,) = scaled[deployment]["spec"]["triggers"]
        meta = trigger["metadata"]
        assert meta["stream"] == messaging.DISPATCH_STREAM
        assert meta["consumer"] == messaging.worker_consumer(job_type)
        assert meta["account"] == "$G"
        host, port = meta["natsServerMonitoringEndpoint"].rsplit(":", 1)
        service, namespace = host.split(".")[:2]
        assert namespace == "aiorch" and int(port) == monitor_port
        headless = named(docs, "Service", service)
        assert headless["spec"]["clusterIP"] == "None" and nats["spec"]["serviceName"] == service
        assert monitor_port in [p["port"] for p in headless["spec"]["ports"]]
        if job_type in GPU_TYPES:
            assert scaled[deployment]["spec"]["minReplicaCount"] == 0, f"{deployment}: GPU pools go to zero"
    assert "server_name: $POD_NAME" in nats_conf, "KEDA asks each node by its pod name"


@pytest.mark.parametrize(("target", "replicas"), [("overlays/dev", 1), ("overlays/prod", 3)])
def test_nats_runs_jetstream_on_persistent_volumes(target: str, replicas: int) -> None:
    docs = render(target)
    nats = named(docs, "StatefulSet", "nats")
    conf = named(docs, "ConfigMap", "nats-config")["data"]["nats.conf"]
    assert nats["spec"]["replicas"] == replicas
    assert "jetstream" in conf and "http_port: 8222" in conf
    assert nats["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    routes = re.findall(r"nats://(nats-\d+)\.", conf)
    if replicas > 1:
        assert routes == [f"nats-{i}" for i in range(replicas)]
    else:
        assert "cluster" not in conf, "a lone node of a cluster waits for a quorum forever"


# ---- hardening, images, availability, monitoring, network ---------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_every_workload_is_hardened_and_sized(target: str) -> None:
    docs = render(target)
    for workload in of_kind(docs, *WORKLOAD_KINDS):
        spec = pod_spec(workload)
        assert spec["securityContext"]["runAsNonRoot"] is True, workload["metadata"]["name"]
        assert spec.get("automountServiceAccountToken") is False, workload["metadata"]["name"]
    for c in containers(docs):
        security = c.spec["securityContext"]
        assert security["allowPrivilegeEscalation"] is False, c.name
        assert security["readOnlyRootFilesystem"] is True, c.name
        assert security["capabilities"]["drop"] == ["ALL"], c.name
        resources = c.spec["resources"]
        assert {"cpu", "memory"} <= resources["requests"].keys(), c.name
        assert "memory" in resources["limits"], c.name
        if security["readOnlyRootFilesystem"] and c in list(aiorch_containers(docs)):
            assert "emptyDir" in c.mounts()["/tmp"]["volume"], f"{c.name}: Python and ffmpeg write there"  # noqa: S108


@pytest.mark.parametrize("target", TARGETS)
def test_deployments_have_probes(target: str) -> None:
    for c in containers(render(target), init=False):
        if c.workload["kind"] in ("Deployment", "StatefulSet"):
            assert "livenessProbe" in c.spec and "readinessProbe" in c.spec, c.name


@pytest.mark.parametrize("target", TARGETS)
def test_images_carry_a_pinned_tag(target: str) -> None:
    for c in containers(render(target)):
        image = c.spec["image"]
        if "@sha256:" in image:
            continue
        name, _, tag = image.rpartition(":")
        assert name and "/" not in tag, f"{c.name}: {image} has no tag"
        assert tag != "latest", f"{c.name}: {image}"
    for cluster in of_kind(render(target), "Cluster"):
        assert not cluster["spec"]["imageName"].endswith(":latest")


@pytest.mark.parametrize("target", TARGETS)
def test_termination_grace_outlasts_the_shutdown_grace(target: str) -> None:
    docs = render(target)
    for c in aiorch_containers(docs):
        if c.workload["kind"] != "Deployment":
            continue
        settings = settings_of(c)
        grace = float(
            c.value(docs, "AIORCH_SHUTDOWN_GRACE_SECONDS") or settings.model_fields["shutdown_grace_seconds"].default
        )
        if issubclass(settings, config.ServiceSettings):
            drain = float(
                c.value(docs, "AIORCH_DRAIN_DELAY_SECONDS") or settings.model_fields["drain_delay_seconds"].default
            )
        else:
            drain = HAND_BACK_SECONDS  # a worker hands its unfinished jobs back after the grace
        assert pod_spec(c.workload)["terminationGracePeriodSeconds"] > grace + drain, c.name


def test_prod_services_are_replicated_behind_disruption_budgets() -> None:
    docs = render("overlays/prod")
    budgets = of_kind(docs, "PodDisruptionBudget")
    hpas = {h["spec"]["scaleTargetRef"]["name"]: h for h in of_kind(docs, "HorizontalPodAutoscaler")}
    for name in [*SERVICE_SETTINGS, "gateway"]:
        deployment = named(docs, "Deployment", name)
        assert "replicas" not in deployment["spec"], f"{name}: the HPA owns the replica count"
        assert hpas[name]["spec"]["minReplicas"] >= 2, name
        assert any(selects(b["spec"]["selector"], pod_labels(deployment)) for b in budgets), name
    nats = named(docs, "StatefulSet", "nats")
    assert any(selects(b["spec"]["selector"], pod_labels(nats)) for b in budgets)
    assert of_kind(docs, "Cluster"), "prod runs PostgreSQL through an operator"
    assert not [s for s in of_kind(docs, "StatefulSet") if s["metadata"]["name"] == "postgres"]


@pytest.mark.parametrize("target", TARGETS)
def test_services_have_autoscalers(target: str) -> None:
    docs = render(target)
    targets = {h["spec"]["scaleTargetRef"]["name"] for h in of_kind(docs, "HorizontalPodAutoscaler")}
    assert targets == {*SERVICE_SETTINGS, "gateway"}


def test_prod_monitors_every_metrics_port() -> None:
    docs = render("overlays/prod")
    monitors = of_kind(docs, "PodMonitor")
    for c in containers(docs):
        labels = pod_labels(c.workload)
        for port in c.ports():
            if port not in ("metrics", "stats"):
                continue
            assert any(
                selects(m["spec"]["selector"], labels) and port in [e["port"] for e in m["spec"]["podMetricsEndpoints"]]
                for m in monitors
            ), f"{c.name}: port {port} is scraped by no PodMonitor"


def _policies_for(docs: tuple[Manifest, ...], labels: dict[str, str]) -> list[Manifest]:
    return [p for p in of_kind(docs, "NetworkPolicy") if selects(p["spec"]["podSelector"], labels)]


@pytest.mark.parametrize("target", TARGETS)
def test_network_policies_deny_by_default_and_open_only_the_gateway(target: str) -> None:
    docs = render(target)
    deny = named(docs, "NetworkPolicy", "default-deny")["spec"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny
    for policy in of_kind(docs, "NetworkPolicy"):
        for rule in policy["spec"].get("ingress", []):
            if "from" not in rule:
                assert policy["spec"]["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "gateway"}}, (
                    f"{policy['metadata']['name']} admits traffic from anywhere"
                )
    gateway = named(docs, "Deployment", "gateway")
    open_ports = {
        port["port"]
        for p in _policies_for(docs, pod_labels(gateway))
        for rule in p["spec"].get("ingress", [])
        if "from" not in rule
        for port in rule["ports"]
    }
    (spec,) = pod_spec(gateway)["containers"]
    listeners = {port for name, port in Container(gateway, spec).ports().items() if name != "stats"}
    assert open_ports == listeners, "only the gateway's listeners are public"


@pytest.mark.parametrize("target", TARGETS)
def test_workers_reach_only_nats_dns_and_the_blob_store(target: str) -> None:
    docs = render(target)
    allowed = {53, 4222, 80, 443}
    for c in workers(docs):
        for policy in _policies_for(docs, pod_labels(c.workload)):
            for rule in policy["spec"].get("egress", []):
                ports = {p["port"] for p in rule.get("ports", [])}
                assert ports and ports <= allowed, f"{c.name}: {policy['metadata']['name']} opens {ports or 'all'}"
                for peer in rule.get("to", []):
                    block = peer.get("ipBlock")
                    if block and ports & {80, 443}:
                        assert {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"} <= set(block.get("except", []))


# ---- NATS users and permissions -----------------------------------------------------------------------


def nats_component(container: Container) -> str | None:
    """The NATS user a process connects as: its service's, `workers` for every worker, none for the rest."""
    match container.args[:2]:
        case ["serve", service]:
            return service
        case ["worker", *_]:
            return "workers"
    return None


@pytest.mark.parametrize("target", TARGETS)
def test_nats_users_and_permissions_are_the_codes(target: str, tmp_path: Path) -> None:
    """The server's users are nats_permissions' rendering, each password from its component's Secret."""
    docs = render(target)
    data = named(docs, "ConfigMap", "nats-config")["data"]
    assert data["authorization.conf"] == nats_permissions.render_for_environment(), (
        "deploy/k8s/base/nats.yaml is out of date: run .venv/bin/python tools/render_nats_authorization.py"
    )
    assert 'include "authorization.conf"' in data["nats.conf"]
    assert "no_auth_user" not in data["nats.conf"] + data["authorization.conf"], "anonymous clients are refused"
    nats = next(c for c in containers(docs) if c.name == "StatefulSet/nats/nats")
    env = nats.env(docs)
    for component in nats_permissions.COMPONENTS:
        reference = env[nats_permissions.password_variable(component)]["valueFrom"]["secretKeyRef"]
        assert reference == {"name": f"aiorch-nats-{component}", "key": "password"}

    # nats-server itself accepts the configuration (variables as the pod gets them from the Secrets).
    for key, text in data.items():
        (tmp_path / key).write_text(text.replace("/data/jetstream", str(tmp_path / "js")))
    variables = {nats_permissions.password_variable(c): f"secret-{c}" for c in nats_permissions.COMPONENTS}
    checked = subprocess.run(
        [str(Path(sys.executable).parent / "nats-server"), "-t", "-c", str(tmp_path / "nats.conf")],
        env={**os.environ, "POD_NAME": "nats-0", **variables},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr


@pytest.mark.parametrize("target", TARGETS)
def test_each_component_connects_as_its_own_nats_user(target: str) -> None:
    docs = render(target)
    seen = set()
    for c in aiorch_containers(docs):
        component = nats_component(c)
        env = c.env(docs)
        if component is None:
            assert "AIORCH_NATS_PASSWORD" not in env, f"{c.name} needs no NATS credentials"
            continue
        seen.add(component)
        assert c.value(docs, "AIORCH_NATS_USER") == component, c.name
        reference = env["AIORCH_NATS_PASSWORD"]["valueFrom"]["secretKeyRef"]
        assert reference == {"name": f"aiorch-nats-{component}", "key": "password"}, c.name
        url = c.value(docs, "NATS_URL")
        assert url is not None and "@" not in url, f"{c.name}: NATS_URL carries no credentials"
    assert seen == {"auth", "projects", "jobs", "workers"}
