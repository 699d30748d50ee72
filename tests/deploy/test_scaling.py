"""Production on Kubernetes (issue 20): worker scaling that never costs a running job, each pool on the
hardware its engine uses, replica counts left to the autoscalers, spread over zones and nodes, priorities.

Every check reads the rendered overlays (`kubectl kustomize`); the scaling replay is tests/deploy/keda_replay.py.
"""

from __future__ import annotations

import ast
import math
import re

import pytest

from services.common import config
from services.workers.engines.registry import ENGINES
from services.workers.main import HAND_BACK_SECONDS
from services.workers.runtime import STOP_GRACE_SECONDS
from services.workers.timelimit import parse_time_limits, time_limit_for
from tests.deploy.keda_replay import Pool, Replay, Scaling, replay
from tests.deploy.manifests import (
    ROOT,
    TARGETS,
    WORKLOAD_KINDS,
    Container,
    Manifest,
    aiorch_containers,
    kubectl,
    named,
    of_kind,
    pod_labels,
    pod_spec,
    render,
    selects,
)

pytestmark = pytest.mark.skipif(kubectl() is None, reason="kubectl is not installed: the manifests cannot be rendered")

PROD = "overlays/prod"
# The engine library that can run on a GPU (CTranslate2 Whisper, AIORCH_WORKER_STT_DEVICE=cuda); WORLD,
# espeak-ng, Apertium and OpenCV run on the CPU only.
GPU_LIBRARY = "services.workers.engines.toolkit.whisper"
# From a pod's creation to its first fetch on a cold GPU node (node, image pull, model load): a guess on the
# slow side, which only makes the pool lag behind its queue for longer.
COLD_START_SECONDS = 180
JOBS = 10
SERVICES = ("auth", "projects", "jobs", "gateway")


def worker_containers(docs: tuple[Manifest, ...]) -> dict[str, Container]:
    """The worker container of each pool, by job type."""
    found = {}
    for c in aiorch_containers(docs):
        if c.args[:1] == ["worker"]:
            found[c.args[c.args.index("--types") + 1].upper()] = c
    return found


def setting(c: Container, docs: tuple[Manifest, ...], name: str) -> float:
    """A worker setting as the container gets it, or the code's default."""
    value = c.value(docs, f"AIORCH_{name.upper()}")
    return float(value if value is not None else config.WorkerSettings.model_fields[name].default)


def time_limit(c: Container, docs: tuple[Manifest, ...], job_type: str) -> float:
    """The time limit of one attempt of `job_type` in this container (runtime.py's rule)."""
    limits = parse_time_limits(c.value(docs, "AIORCH_WORKER_TIME_LIMITS") or "")
    return time_limit_for(job_type, limits, setting(c, docs, "worker_time_limit_seconds"))


def pool_of(c: Container, docs: tuple[Manifest, ...]) -> Pool:
    return Pool(
        concurrency=int(setting(c, docs, "worker_concurrency")),
        shutdown_grace_seconds=setting(c, docs, "shutdown_grace_seconds"),
        termination_grace_seconds=float(pod_spec(c.workload)["terminationGracePeriodSeconds"]),
        start_seconds=COLD_START_SECONDS,
    )


def scaled_objects(docs: tuple[Manifest, ...]) -> dict[str, Manifest]:
    """ScaledObjects by the Deployment they scale."""
    return {s["spec"]["scaleTargetRef"]["name"]: s for s in of_kind(docs, "ScaledObject")}


def long_jobs(limit: float) -> list[float]:
    """Ten long jobs, each ending at its own time, the longest at 95 % of the type's time limit."""
    return [limit * (0.5 + 0.05 * i) for i in range(JOBS)]


def busy_then_idle(scaling: Scaling, pool: Pool, limit: float) -> Replay:
    """Ten long jobs dispatched at once, then an idle queue, long enough for every job and the cooldown."""
    rounds = math.ceil(JOBS / (scaling.max_replicas * pool.concurrency))
    seconds = int(rounds * (limit + 4 * COLD_START_SECONDS) + scaling.cooldown_seconds + 3600)
    return replay(scaling, pool, long_jobs(limit), seconds)


# ---- item 1: scale-in never costs a running job ------------------------------------------------------------


@pytest.mark.parametrize("job_type", sorted(ENGINES))
def test_busy_then_idle_replay_loses_no_running_job(job_type: str) -> None:
    """Given the rendered ScaledObject and Deployment of a pool, when ten long jobs are dispatched and the queue
    then stays idle, then no pod leaves while it runs a job, the replica count never falls below the busy pods,
    every job ends on its first delivery, and the pool is back at its minimum soon after the last job."""
    docs = render(PROD)
    c = worker_containers(docs)[job_type]
    scaled = scaled_objects(docs)[c.workload["metadata"]["name"]]
    scaling, pool, limit = Scaling.of(scaled), pool_of(c, docs), time_limit(c, docs, job_type)

    result = busy_then_idle(scaling, pool, limit)

    assert result.lost_attempts() == []
    assert result.pods_that_left_busy() == []
    assert [job.deliveries for job in result.jobs] == [1] * JOBS
    assert all(replicas >= busy for _, replicas, _, busy in result.polls), "replicas fell below the busy pods"
    assert max(replicas for _, replicas, _, _ in result.polls) == min(scaling.max_replicas, JOBS)
    last_end = result.last_job_end()
    back_at_minimum = result.first_time_at(scaling.min_replicas, after=last_end)
    assert back_at_minimum is not None, "the pool never went back to its minimum"
    idle_for = back_at_minimum - last_end
    # Scale-down goes one pod per policy period after the stabilisation window; zero comes after the cooldown.
    (policy,) = scaling.scale_down["policies"]
    bound = scaling.scale_down["stabilizationWindowSeconds"] + scaling.max_replicas * policy["periodSeconds"]
    if scaling.min_replicas == 0:
        bound = max(bound, scaling.cooldown_seconds)
    assert idle_for <= bound + 2 * scaling.polling_seconds, f"idle pods held {idle_for} s after the last job"


def test_the_replay_catches_the_settings_it_replaced() -> None:
    """The replay is not blind: the former GPU-pool settings (lagThreshold 5, cooldown 3900 s, the HPA's default
    scale-down, a 20 s shutdown grace in a 60 s termination grace) lose running jobs and hold an idle GPU node
    for over an hour."""
    before = Scaling.of(
        {
            "spec": {
                "pollingInterval": 15,
                "cooldownPeriod": 3900,
                "minReplicaCount": 0,
                "maxReplicaCount": 4,
                "triggers": [{"metadata": {"lagThreshold": "5", "activationLagThreshold": "0"}}],
            }
        }
    )
    pool = Pool(concurrency=1, shutdown_grace_seconds=20, termination_grace_seconds=60, start_seconds=180)

    result = busy_then_idle(before, pool, 900)

    assert "handed back" in [how for _, how in result.lost_attempts()]
    assert any(replicas < busy for _, replicas, _, busy in result.polls)
    zero = result.first_time_at(0, after=result.last_job_end())
    assert zero is not None and zero - result.last_job_end() > 3600


def test_each_pod_counts_as_many_jobs_as_it_runs() -> None:
    """The nats-jetstream lag is pending + ack-pending (running) messages; one unit of lagThreshold per job a pod
    runs at once makes the desired replicas the pods that the waiting and running jobs need."""
    docs = render(PROD)
    scaled = scaled_objects(docs)
    for job_type, c in worker_containers(docs).items():
        (trigger,) = scaled[c.workload["metadata"]["name"]]["spec"]["triggers"]
        assert trigger["type"] == "nats-jetstream", job_type
        assert float(trigger["metadata"]["lagThreshold"]) == setting(c, docs, "worker_concurrency"), job_type
        assert float(trigger["metadata"]["activationLagThreshold"]) == 0, f"{job_type}: one job activates the pool"


@pytest.mark.parametrize("target", TARGETS)
def test_a_stopped_worker_may_finish_its_job_before_it_is_killed(target: str) -> None:
    """SIGTERM stops fetching and lets running jobs go on for the shutdown grace, which covers the type's time
    limit; the pod's termination grace covers that, the engine's stop and the hand-back."""
    docs = render(target)
    for job_type, c in worker_containers(docs).items():
        grace = setting(c, docs, "shutdown_grace_seconds")
        assert grace >= time_limit(c, docs, job_type), f"{c.name}: a job may run past the shutdown grace"
        termination = pod_spec(c.workload)["terminationGracePeriodSeconds"]
        assert termination > grace + STOP_GRACE_SECONDS + HAND_BACK_SECONDS, c.name


@pytest.mark.parametrize("target", TARGETS)
def test_the_cluster_autoscaler_does_not_evict_workers(target: str) -> None:
    for c in worker_containers(render(target)).values():
        annotations = c.workload["spec"]["template"]["metadata"].get("annotations", {})
        assert annotations.get("cluster-autoscaler.kubernetes.io/safe-to-evict") == "false", c.name


def test_prod_worker_pools_are_drained_one_pod_at_a_time() -> None:
    docs = render(PROD)
    budgets = of_kind(docs, "PodDisruptionBudget")
    for c in worker_containers(docs).values():
        covering = [b for b in budgets if selects(b["spec"]["selector"], pod_labels(c.workload))]
        assert len(covering) == 1, c.name
        assert covering[0]["spec"].get("maxUnavailable") == 1, c.name


# ---- item 4: each pool on the hardware its engine uses --------------------------------------------------------


def engine_uses_a_gpu(job_type: str) -> bool:
    """Whether the type's engine module imports the Whisper toolkit (read from its source, not imported)."""
    module = ENGINES[job_type].partition(":")[0]
    tree = ast.parse((ROOT / (module.replace(".", "/") + ".py")).read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {
        f"{node.module}.{a.name}" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) for a in node.names
    }
    return GPU_LIBRARY in imported


def test_only_the_pools_whose_engine_uses_a_gpu_get_one() -> None:
    docs = render(PROD)
    assert {t for t in ENGINES if engine_uses_a_gpu(t)} == {"STT", "DUBBING"}
    for job_type, c in worker_containers(docs).items():
        spec = pod_spec(c.workload)
        gpus = int(c.spec["resources"].get("limits", {}).get("nvidia.com/gpu", 0))
        on_gpu_nodes = "nvidia.com/gpu.present" in spec.get("nodeSelector", {})
        assert (gpus == 1) is engine_uses_a_gpu(job_type), c.name
        assert on_gpu_nodes is engine_uses_a_gpu(job_type), c.name
        assert ("aiorch-worker-gpu" in c.spec["image"]) is engine_uses_a_gpu(job_type), c.name


def readme_hardware_table() -> dict[str, list[str]]:
    """The README's worker hardware table: cells by job type."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Hardware per worker pool") :]
    rows = {}
    for line in section.splitlines()[1:]:
        if line.startswith("## "):
            break
        cells = [cell.strip().strip("`") for cell in line.strip().strip("|").split("|")]
        if len(cells) > 1 and cells[0] in ENGINES:
            rows[cells[0]] = cells
    return rows


def test_readme_states_each_pools_hardware_as_rendered() -> None:
    """README: | Type | Engine | GPU | CPU request | Memory request / limit | Image | Scale (min-max) |."""
    docs = render(PROD)
    table = readme_hardware_table()
    assert sorted(table) == sorted(ENGINES)
    scaled = scaled_objects(docs)
    for job_type, c in worker_containers(docs).items():
        resources = c.spec["resources"]
        spec = scaled[c.workload["metadata"]["name"]]["spec"]
        gpu = resources["limits"].get("nvidia.com/gpu")
        expected = [
            job_type,
            ENGINES[job_type].rpartition(":")[2],
            f"{gpu} x NVIDIA" if gpu else "none",
            str(resources["requests"]["cpu"]),
            f"{resources['requests']['memory']} / {resources['limits']['memory']}",
            c.spec["image"].rsplit(":", 1)[0].rsplit("/", 1)[1],
            f"{spec['minReplicaCount']}-{spec['maxReplicaCount']}",
        ]
        assert table[job_type] == expected, job_type


# ---- item 8: an apply does not reset autoscaled replica counts -------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_no_autoscaled_deployment_sets_replicas(target: str) -> None:
    docs = render(target)
    autoscaled = {h["spec"]["scaleTargetRef"]["name"] for h in of_kind(docs, "HorizontalPodAutoscaler")}
    autoscaled |= set(scaled_objects(docs))
    assert autoscaled >= set(SERVICES)
    for name in autoscaled:
        assert "replicas" not in named(docs, "Deployment", name)["spec"], f"an apply would reset {name}'s replicas"


# ---- item 9: spread and priority -------------------------------------------------------------------------------


def spread_selects_own_pods(constraint: Manifest, workload: Manifest) -> bool:
    """Whether a constraint counts exactly this workload's pods: its selector plus matchLabelKeys taken from them."""
    labels = pod_labels(workload)
    keys = [k for k in constraint.get("matchLabelKeys", []) if k != "pod-template-hash"]
    own = {k: labels[k] for k in keys if k in labels}
    return selects(constraint["labelSelector"], labels) and own.get("app.kubernetes.io/name") == labels.get(
        "app.kubernetes.io/name"
    )


def test_prod_deployments_spread_over_zones_and_nodes() -> None:
    docs = render(PROD)
    for deployment in of_kind(docs, "Deployment"):
        name = deployment["metadata"]["name"]
        constraints = {c["topologyKey"]: c for c in pod_spec(deployment).get("topologySpreadConstraints", [])}
        assert {"topology.kubernetes.io/zone", "kubernetes.io/hostname"} <= constraints.keys(), name
        for constraint in constraints.values():
            assert constraint["maxSkew"] == 1 and spread_selects_own_pods(constraint, deployment), name
        required = constraints["kubernetes.io/hostname"]["whenUnsatisfiable"] == "DoNotSchedule"
        # Two replicas of a service on one node are one failure from an outage; a GPU pool waits for no node.
        assert required is (name in SERVICES), name


@pytest.mark.parametrize("target", TARGETS)
def test_nats_voters_run_on_distinct_nodes_spread_over_zones(target: str) -> None:
    docs = render(target)
    nats = named(docs, "StatefulSet", "nats")
    spec = pod_spec(nats)
    (rule,) = spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert rule["topologyKey"] == "kubernetes.io/hostname"
    assert selects(rule["labelSelector"], pod_labels(nats))
    zones = [c for c in spec["topologySpreadConstraints"] if c["topologyKey"] == "topology.kubernetes.io/zone"]
    assert len(zones) == 1 and selects(zones[0]["labelSelector"], pod_labels(nats))


GO_UNITS = {"B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}
KUBERNETES_UNITS = {"": 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6, "G": 10**9}


def go_bytes(text: str) -> int:
    """A GOMEMLIMIT value (Go's runtime/debug syntax: an integer and an optional B, KiB, MiB, GiB or TiB)."""
    match = re.fullmatch(r"(\d+)(B|KiB|MiB|GiB|TiB)?", text)
    assert match, f"GOMEMLIMIT={text!r} is not a Go memory limit"
    return int(match[1]) * GO_UNITS[match[2] or "B"]


def kubernetes_bytes(quantity: str) -> int:
    match = re.fullmatch(r"(\d+)(Ki|Mi|Gi|Ti|k|M|G)?", quantity)
    assert match, quantity
    return int(match[1]) * KUBERNETES_UNITS[match[2] or ""]


@pytest.mark.parametrize("target", TARGETS)
def test_nats_go_memory_limit_sits_below_its_container_limit(target: str) -> None:
    """GOMEMLIMIT makes the Go collector work harder near the limit instead of the kernel OOM-killing the node."""
    nats = next(c for c in named(render(target), "StatefulSet", "nats")["spec"]["template"]["spec"]["containers"])
    env = {v["name"]: v.get("value") for v in nats.get("env", [])}
    ratio = go_bytes(env["GOMEMLIMIT"]) / kubernetes_bytes(nats["resources"]["limits"]["memory"])
    assert 0.8 <= ratio <= 0.95, f"GOMEMLIMIT is {ratio:.0%} of the memory limit"


@pytest.mark.parametrize("target", ["overlays/dev", PROD])
def test_the_control_plane_outranks_the_workers(target: str) -> None:
    docs = render(target)
    classes = {p["metadata"]["name"]: p for p in of_kind(docs, "PriorityClass")}
    workers = classes["aiorch-workers"]
    assert workers.get("preemptionPolicy") == "Never", "a preempting worker could evict a running job"
    for workload in of_kind(docs, *WORKLOAD_KINDS):
        name = workload["metadata"]["name"]
        chosen = classes[pod_spec(workload)["priorityClassName"]]
        is_worker = pod_labels(workload).get("app.kubernetes.io/component") == "worker"
        assert (chosen is workers) is is_worker, name
        assert is_worker or chosen["value"] > workers["value"], name
    for cluster in of_kind(docs, "Cluster"):
        assert classes[cluster["spec"]["priorityClassName"]]["value"] > workers["value"]
    for priority_class in classes.values():
        assert priority_class.get("globalDefault") is False
