"""The prod entry point, network policies, identities and pod security, read from the rendered overlays.

Issue 20, items 2 (TLS, CORS, client address), 6 (drain), 7 (the blob store's egress), 11 (service accounts,
Pod Security Admission) and 13 (the previous signing keys are mounted). tests/deploy/test_gateway_tls.py runs
the prod gateway itself.
"""

from __future__ import annotations

import ipaddress
import os
import re
import subprocess
from pathlib import Path, PurePosixPath

import pytest

from gateway import render as gateway_render
from services.common import config
from tests.deploy.manifests import (
    IMAGES,
    K8S,
    ROOT,
    TARGETS,
    WORKLOAD_KINDS,
    Container,
    Manifest,
    aiorch_containers,
    gateway_containers,
    kubectl,
    named,
    of_kind,
    pod_labels,
    pod_spec,
    render,
    selects,
    yaml,
)

pytestmark = pytest.mark.skipif(kubectl() is None, reason="kubectl is not installed: the manifests cannot be rendered")

PROD = "overlays/prod"
# Addresses a worker fetching a user's URL must never reach: RFC 1918, link-local (cloud metadata), CGNAT.
PRIVATE_RANGES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10")


def _gateway(docs: tuple[Manifest, ...]) -> Container:
    return gateway_containers(docs)[0]


def _renderer(docs: tuple[Manifest, ...]) -> Container:
    return gateway_containers(docs)[1]


# ---- item 2: TLS, CORS, the client's address -----------------------------------------------------------


def test_prod_serves_https_on_443_and_http_only_for_its_redirect() -> None:
    docs = render(PROD)
    gateway, renderer = gateway_containers(docs)
    ports = gateway.ports()
    assert int(renderer.value(docs, "AIORCH_GATEWAY_PORT") or 0) == ports["https"]
    assert int(renderer.value(docs, "AIORCH_GATEWAY_HTTP_REDIRECT_PORT") or 0) == ports["http"]
    assert renderer.value(docs, "AIORCH_GATEWAY_HTTPS_PUBLIC_PORT") == "443"
    service = named(docs, "Service", "gateway")["spec"]
    assert {p["port"]: p["targetPort"] for p in service["ports"]} == {443: "https", 80: "http"}


def test_prod_tls_files_come_from_the_secret_the_certificate_writes() -> None:
    docs = render(PROD)
    gateway, renderer = gateway_containers(docs)
    (certificate,) = of_kind(docs, "Certificate")
    for variable, key in (("AIORCH_GATEWAY_TLS_CERT_FILE", "tls.crt"), ("AIORCH_GATEWAY_TLS_KEY_FILE", "tls.key")):
        path = PurePosixPath(renderer.value(docs, variable) or "")
        volume = gateway.mounts()[str(path.parent)]["volume"]
        assert volume["secret"]["secretName"] == certificate["spec"]["secretName"]
        assert {"key": key, "path": path.name} in volume["secret"]["items"]


def test_prod_cors_allows_only_the_certificates_https_origins() -> None:
    docs = render(PROD)
    origins = (_renderer(docs).value(docs, "AIORCH_GATEWAY_CORS_ORIGINS") or "*").split(",")
    (certificate,) = of_kind(docs, "Certificate")
    assert origins == [f"https://{name}" for name in certificate["spec"]["dnsNames"]]


def test_prod_envoy_sees_the_clients_own_address() -> None:
    docs = render(PROD)
    service = named(docs, "Service", "gateway")["spec"]
    assert service["type"] == "LoadBalancer"
    # Local: no SNAT on the way in, so Envoy's peer is the client and no X-Forwarded-For hop is believed.
    assert service["externalTrafficPolicy"] == "Local"
    assert _renderer(docs).value(docs, "AIORCH_GATEWAY_TRUSTED_HOPS") == "0"


# ---- item 6: drain -------------------------------------------------------------------------------------


def _hook(container: Container) -> dict[str, float]:
    command = container.spec["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "/usr/local/bin/gateway-drain"
    return {k: float(v) for k, v in (arg.removeprefix("--").split("=", 1) for arg in command[1:])}


def _envoy_option(container: Container, option: str) -> str:
    args = container.spec["args"]
    return str(args[args.index(option) + 1])


@pytest.mark.parametrize("target", TARGETS)
def test_the_gateway_drains_within_its_grace_and_outlasts_a_unary_call(target: str) -> None:
    docs = render(target)
    gateway, renderer = gateway_containers(docs)
    hook = _hook(gateway)
    assert hook["admin-port"] == float(renderer.value(docs, "AIORCH_GATEWAY_ADMIN_PORT") or 0)
    drain_time = float(_envoy_option(gateway, "--drain-time-s"))
    assert _envoy_option(gateway, "--drain-strategy") == "immediate"
    # The hook waits at least Envoy's drain time, or it would return before the listeners close.
    assert hook["drain-seconds"] >= drain_time
    # The longest unary call is the one a service lets finish on its own shutdown.
    unary = max(
        float(c.value(docs, "AIORCH_SHUTDOWN_GRACE_SECONDS") or 0)
        for c in aiorch_containers(docs)
        if c.args[0] == "serve"
    )
    assert drain_time >= unary
    grace = pod_spec(gateway.workload)["terminationGracePeriodSeconds"]
    assert grace >= hook["unready-seconds"] + hook["drain-seconds"] + 10, "the hook's time counts within the grace"


def test_the_gateway_image_carries_the_drain_hook() -> None:
    dockerfile = (IMAGES / "gateway.Dockerfile").read_text()
    final_stage = dockerfile.rsplit("\nFROM ", 1)[1]
    assert final_stage.startswith("${DEBIAN_IMAGE}"), "no Python in the gateway image"
    assert "COPY gateway/drain.sh /usr/local/bin/gateway-drain" in final_stage
    assert re.search(r"apt-get install [^&]*\bcurl\b", final_stage), "the hook's HTTP client"
    assert (ROOT / "gateway" / "drain.sh").stat().st_mode & 0o111, "the hook must be executable"


@pytest.mark.parametrize("target", TARGETS)
def test_services_stay_not_serving_until_envoy_has_taken_them_out(target: str) -> None:
    docs = render(target)
    for c in aiorch_containers(docs):
        if c.args[0] != "serve":
            continue
        default = config.ServiceSettings.model_fields["drain_delay_seconds"].default
        drain_delay = float(c.value(docs, "AIORCH_DRAIN_DELAY_SECONDS") or default)
        assert drain_delay >= 2 * gateway_render.unhealthy_within_seconds(), c.name


# ---- item 7: what workers may reach ---------------------------------------------------------------------


def _private_peer_problem(peer: Manifest) -> str | None:
    """Why a peer of an egress rule may reach a private address (None: it may not)."""
    if "ipBlock" in peer:
        block = peer["ipBlock"]
        network = ipaddress.ip_network(block["cidr"])
        excluded = [ipaddress.IPv4Network(e) for e in block.get("except", []) if ":" not in e]
        for private in map(ipaddress.IPv4Network, PRIVATE_RANGES):
            if network.overlaps(private) and not any(private.subnet_of(e) for e in excluded):
                return f"ipBlock {block['cidr']} reaches {private}"
        return None
    if "namespaceSelector" in peer:
        # Pods of other namespaces: only kube-system (for DNS) is one aiorch means to reach.
        if peer["namespaceSelector"] != {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}:
            return f"pods in namespaces {peer['namespaceSelector'] or 'any'}"
        return None
    if "podSelector" in peer:
        return None  # pods of aiorch's own namespace, each with its own ingress policy
    return f"unknown peer {peer}"


def egress_problems(policies: list[Manifest]) -> list[str]:
    """Every way these policies let a pod reach a private address other than aiorch's own pods and DNS."""
    problems = []
    for policy in policies:
        name = policy["metadata"]["name"]
        for rule in policy["spec"].get("egress", []):
            if not rule.get("ports"):
                problems.append(f"{name}: a rule opens every port")
            if "to" not in rule:
                problems.append(f"{name}: a rule reaches any address")
            for peer in rule.get("to", []):
                if problem := _private_peer_problem(peer):
                    problems.append(f"{name}: {problem}")
    return problems


def _policies_selecting(docs: tuple[Manifest, ...], labels: dict[str, str]) -> list[Manifest]:
    return [
        p
        for p in of_kind(docs, "NetworkPolicy")
        if "Egress" in p["spec"]["policyTypes"] and selects(p["spec"]["podSelector"], labels)
    ]


@pytest.mark.parametrize("target", TARGETS)
def test_no_policy_lets_a_worker_reach_a_private_address(target: str) -> None:
    docs = render(target)
    for deployment in of_kind(docs, "Deployment"):
        if pod_labels(deployment).get("app.kubernetes.io/component") == "worker":
            policies = _policies_selecting(docs, pod_labels(deployment))
            assert egress_problems(policies) == [], deployment["metadata"]["name"]


OPEN_S3_POLICY = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: blob-store-s3}
spec:
  podSelector: {matchLabels: {aiorch.io/blob-client: "true"}}
  policyTypes: ["Egress"]
  egress:
    - ports:
        - {protocol: TCP, port: 443}
"""


@pytest.mark.parametrize(
    ("peer", "found"),
    [
        (None, "reaches any address"),
        ({"ipBlock": {"cidr": "0.0.0.0/0"}}, "reaches 10.0.0.0/8"),
        ({"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}, "reaches 172.16.0.0/12"),
        ({"ipBlock": {"cidr": "10.96.0.1/32"}}, "reaches 10.0.0.0/8"),
        ({"namespaceSelector": {}}, "namespaces any"),
        ({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "default"}}}, "namespaces"),
    ],
)
def test_the_check_finds_every_way_to_a_private_address(peer: Manifest | None, found: str) -> None:
    # The policy blob-store-s3 was, with each kind of peer it might have had.
    policy = yaml.safe_load(OPEN_S3_POLICY)
    if peer is not None:
        policy["spec"]["egress"][0]["to"] = [peer]
    (problem,) = egress_problems([policy])
    assert found in problem


def test_the_blob_store_policy_reaches_only_public_addresses_on_443() -> None:
    docs = render(PROD)
    policy = named(docs, "NetworkPolicy", "blob-store-s3")
    assert egress_problems([policy]) == []
    assert [p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"]] == [443]


# ---- item 11: identities and pod security ------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_each_workload_runs_as_its_own_service_account_without_a_token(target: str) -> None:
    docs = render(target)
    accounts = {a["metadata"]["name"]: a for a in of_kind(docs, "ServiceAccount")}
    used: dict[str, str] = {}
    for workload in of_kind(docs, *WORKLOAD_KINDS):
        name = workload["metadata"]["name"]
        if name == "postgres":  # dev's own PostgreSQL, not an aiorch workload
            continue
        spec = pod_spec(workload)
        account = spec.get("serviceAccountName", "default")
        assert account in accounts, f"{name} runs as {account}, which the manifests do not create"
        assert used.setdefault(account, name) == name, f"{name} shares {account} with {used[account]}"
        assert accounts[account].get("automountServiceAccountToken") is False, account
        assert spec.get("automountServiceAccountToken") is False, name


def test_the_namespace_enforces_the_restricted_pod_security_level() -> None:
    (namespace,) = of_kind(render(PROD), "Namespace")
    labels = namespace["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["pod-security.kubernetes.io/warn"] == "restricted"


ALLOWED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected"}
ALLOWED_VOLUMES |= {"secret"}


def restricted_problems(workload: Manifest) -> list[str]:
    """Where a pod template breaks the Pod Security Standards' restricted level (the checks PSA makes)."""
    spec = pod_spec(workload)
    pod = spec.get("securityContext", {})
    problems = []
    if spec.get("hostNetwork") or spec.get("hostPID") or spec.get("hostIPC"):
        problems.append("host namespaces")
    for volume in spec.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= ALLOWED_VOLUMES:
            problems.append(f"volume {volume['name']}: {kinds}")
    for c in spec.get("containers", []) + spec.get("initContainers", []):
        security = c.get("securityContext", {})
        where = f"container {c['name']}"
        if security.get("privileged"):
            problems.append(f"{where}: privileged")
        if security.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{where}: may escalate privileges")
        if not security.get("runAsNonRoot", pod.get("runAsNonRoot")):
            problems.append(f"{where}: not runAsNonRoot")
        if security.get("runAsUser", pod.get("runAsUser")) == 0:
            problems.append(f"{where}: runs as uid 0")
        seccomp = security.get("seccompProfile", pod.get("seccompProfile", {})).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{where}: seccomp profile {seccomp}")
        capabilities = security.get("capabilities", {})
        if "ALL" not in capabilities.get("drop", []):
            problems.append(f"{where}: keeps its capabilities")
        if set(capabilities.get("add", [])) - {"NET_BIND_SERVICE"}:
            problems.append(f"{where}: adds {capabilities['add']}")
        if any("hostPort" in p for p in c.get("ports", [])):
            problems.append(f"{where}: host port")
    return problems


@pytest.mark.parametrize("target", TARGETS)
def test_every_pod_template_meets_the_restricted_level(target: str) -> None:
    for workload in of_kind(render(target), *WORKLOAD_KINDS):
        assert restricted_problems(workload) == [], workload["metadata"]["name"]


def test_the_restricted_check_refuses_a_pod_that_may_escalate() -> None:
    workload = {
        "kind": "Deployment",
        "spec": {"template": {"spec": {"containers": [{"name": "x", "securityContext": {"runAsNonRoot": True}}]}}},
    }
    problems = restricted_problems(workload)
    assert "container x: may escalate privileges" in problems
    assert "container x: seccomp profile None" in problems
    assert "container x: keeps its capabilities" in problems


# ---- item 13: key rotation ---------------------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_every_service_mounts_the_optional_previous_signing_keys(target: str) -> None:
    docs = render(target)
    for c in aiorch_containers(docs):
        if c.args[0] != "serve":
            continue
        folder = c.value(docs, "AIORCH_JWT_PREVIOUS_PUBLIC_KEY_FILES")
        assert folder, f"{c.name}: no previous keys during a rotation"
        (source,) = c.mounts()[folder]["volume"]["projected"]["sources"]
        assert source["secret"] == {"name": "aiorch-jwt-previous", "optional": True}


# ---- the procedures docs/operations.md gives -----------------------------------------------------------


def _documented_patches(section: str) -> list[Manifest]:
    """The kustomize `patches` of the YAML example under a docs/operations.md heading."""
    text = (ROOT / "docs" / "operations.md").read_text()
    body = text.split(f"### {section}\n", 1)[1].split("\n### ", 1)[0]
    (block,) = re.findall(r"```yaml\n(.*?)```", body, re.DOTALL)
    patches: list[Manifest] = yaml.safe_load(block)["patches"]
    return patches


def _render_prod_with(patches: list[Manifest], folder: Path) -> tuple[Manifest, ...]:
    """Prod with an overlay of `patches` on top, as an operator's own overlay would add them."""
    (folder / "kustomization.yaml").write_text(
        yaml.safe_dump({"resources": [os.path.relpath(K8S / PROD, folder)], "patches": patches})
    )
    result = subprocess.run(
        [str(kubectl()), "kustomize", str(folder)], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def test_the_documented_in_cluster_store_patch_keeps_workers_off_other_private_addresses(tmp_path: Path) -> None:
    docs = _render_prod_with(_documented_patches("Network policies"), tmp_path)
    policy = named(docs, "NetworkPolicy", "blob-store-s3")
    (rule,) = policy["spec"]["egress"]
    (peer,) = rule["to"]
    # One namespace's pods with one label, no address block: no other private address is reachable.
    assert set(peer) == {"namespaceSelector", "podSelector"}
    assert list(peer["namespaceSelector"]["matchLabels"]) == ["kubernetes.io/metadata.name"]
    assert peer["podSelector"]["matchLabels"]
    assert [p["port"] for p in rule["ports"]] == [9000]


def test_the_documented_identity_patch_reaches_only_the_blob_clients(tmp_path: Path) -> None:
    docs = _render_prod_with(_documented_patches("Workload identity and pod security"), tmp_path)
    annotated = {a["metadata"]["name"] for a in of_kind(docs, "ServiceAccount") if a["metadata"].get("annotations")}
    blob_clients = {
        w["spec"]["template"]["spec"]["serviceAccountName"]
        for w in of_kind(docs, "Deployment")
        if pod_labels(w).get("aiorch.io/blob-client") == "true"
    }
    assert annotated == blob_clients
    assert "jobs" in annotated and "auth" not in annotated and "gateway" not in annotated
