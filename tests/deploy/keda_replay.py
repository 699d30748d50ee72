"""A replay of KEDA and the HPA scaling one worker pool, second by second, for tests/deploy/test_scaling.py.

It follows the controllers' own rules:
- KEDA's nats-jetstream scaler reports the consumer's lag as `num_pending + num_ack_pending` (waiting plus
  delivered-but-unacked messages: a running job is ack-pending) and activates the pool while the lag is over
  `activationLagThreshold`; it scales 0 -> 1 on activation and 1 -> 0 once the pool has been inactive for
  `cooldownPeriod`. In between, the HPA it creates (minReplicas = max(1, minReplicaCount)) does the scaling.
- The HPA's replica calculation for an AverageValue metric: desired = ceil(lag / lagThreshold), unchanged within
  the 10 % tolerance, bounded by min/max; then its behaviour: the highest recommendation within the scale-down
  stabilisation window (the lowest within the scale-up one), then the rate limits of the scale-up and scale-down
  policies over their periods (selectPolicy Max: the policy allowing the largest change).
- The ReplicaSet removes pods without knowing which are busy; the replay takes the worst case and removes busy
  pods first.
- A worker given SIGTERM (services/workers/main.py) stops fetching, lets its running jobs go on for
  AIORCH_SHUTDOWN_GRACE_SECONDS and exits as soon as it is idle; what still runs then is handed back (the job
  loses a delivery), and what runs at terminationGracePeriodSeconds is killed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

# HPA defaults (k8s.io/kubernetes pkg/controller/podautoscaler): tolerance, and the behaviour it uses where a
# ScaledObject gives none.
TOLERANCE = 0.1
DEFAULT_SCALE_UP = {
    "stabilizationWindowSeconds": 0,
    "selectPolicy": "Max",
    "policies": [
        {"type": "Pods", "value": 4, "periodSeconds": 15},
        {"type": "Percent", "value": 100, "periodSeconds": 15},
    ],
}
DEFAULT_SCALE_DOWN = {
    "stabilizationWindowSeconds": 300,
    "selectPolicy": "Max",
    "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
}


@dataclass(frozen=True)
class Scaling:
    """What a ScaledObject asks of KEDA and of the HPA it creates."""

    polling_seconds: int
    cooldown_seconds: int
    min_replicas: int
    max_replicas: int
    lag_threshold: float
    activation_threshold: float
    scale_up: dict[str, Any]
    scale_down: dict[str, Any]

    @classmethod
    def of(cls, scaled_object: dict[str, Any]) -> Scaling:
        """The settings of a rendered ScaledObject, with KEDA's and the HPA's defaults where it has none."""
        spec = scaled_object["spec"]
        (trigger,) = spec["triggers"]
        behavior = spec.get("advanced", {}).get("horizontalPodAutoscalerConfig", {}).get("behavior", {})
        return cls(
            polling_seconds=int(spec.get("pollingInterval", 30)),
            cooldown_seconds=int(spec.get("cooldownPeriod", 300)),
            min_replicas=int(spec.get("minReplicaCount", 0)),
            max_replicas=int(spec.get("maxReplicaCount", 100)),
            lag_threshold=float(trigger["metadata"]["lagThreshold"]),
            activation_threshold=float(trigger["metadata"].get("activationLagThreshold", 0)),
            scale_up={**DEFAULT_SCALE_UP, **behavior.get("scaleUp", {})},
            scale_down={**DEFAULT_SCALE_DOWN, **behavior.get("scaleDown", {})},
        )


@dataclass(frozen=True)
class Pool:
    """What the worker Deployment gives each pod."""

    concurrency: int
    shutdown_grace_seconds: float
    termination_grace_seconds: float
    start_seconds: float  # from creation to fetching (node, image, models)


@dataclass
class Job:
    """One dispatched job and what happened to it."""

    number: int
    duration: float
    started_at: float | None = None
    deliveries: int = 0
    finished_at: float | None = None
    interrupted: list[str] = field(default_factory=list)  # "handed back" or "killed", one per lost attempt


@dataclass
class Pod:
    """One worker pod."""

    number: int
    fetching_from: float
    jobs: list[Job] = field(default_factory=list)
    stopping_since: float | None = None
    left_at: float | None = None
    jobs_when_it_left: int = 0  # jobs it still held when it stopped running them (handed back or killed)


@dataclass
class Replay:
    """The whole timeline: every job, every pod, and the replica count at each poll."""

    jobs: list[Job]
    pods: list[Pod]
    polls: list[tuple[float, int, int, int]]  # (time, replicas, lag, busy pods)

    def lost_attempts(self) -> list[tuple[int, str]]:
        """(job, how) for every attempt that did not run to its end."""
        return [(job.number, how) for job in self.jobs for how in job.interrupted]

    def pods_that_left_busy(self) -> list[int]:
        """Pods that left (or were killed) while they still held a job."""
        return [pod.number for pod in self.pods if pod.left_at is not None and pod.jobs_when_it_left]

    def last_job_end(self) -> float:
        ends = [job.finished_at for job in self.jobs]
        assert None not in ends, "not every job finished within the replay"
        return max(e for e in ends if e is not None)

    def first_time_at(self, replicas: int, after: float) -> float | None:
        """The first poll after `after` that left `replicas` replicas."""
        return next((t for t, r, _, _ in self.polls if t > after and r == replicas), None)


class _Autoscaler:
    """KEDA's activation and cooldown, and the HPA's calculation and behaviour."""

    def __init__(self, scaling: Scaling) -> None:
        self.scaling = scaling
        self.hpa_min = max(1, scaling.min_replicas)
        self.recommendations: list[tuple[float, int]] = []
        self.changes: list[tuple[float, int]] = []  # (time, replicas added (+) or removed (-))
        self.last_active: float | None = None

    def desired(self, now: float, current: int, lag: int) -> int:
        s = self.scaling
        active = lag > s.activation_threshold
        if active:
            self.last_active = now
        if current == 0:
            return 1 if active else 0
        if (
            not active
            and s.min_replicas == 0
            and (self.last_active is None or now - self.last_active >= s.cooldown_seconds)
        ):
            return 0
        usage_ratio = lag / (s.lag_threshold * current)
        raw = current if abs(usage_ratio - 1.0) <= TOLERANCE else math.ceil(lag / s.lag_threshold)
        raw = min(max(raw, self.hpa_min), s.max_replicas)
        self.recommendations.append((now, raw))
        up = min(r for t, r in self.recommendations if now - t <= s.scale_up["stabilizationWindowSeconds"])
        down = max(r for t, r in self.recommendations if now - t <= s.scale_down["stabilizationWindowSeconds"])
        if current < up:
            target = min(up, self._scale_up_limit(now, current))
        elif current > down:
            target = max(down, self._scale_down_limit(now, current))
        else:
            target = current
        return min(max(target, self.hpa_min), s.max_replicas)

    def record(self, now: float, change: int) -> None:
        if change:
            self.changes.append((now, change))

    def _scale_up_limit(self, now: float, current: int) -> int:
        limits: list[int] = []
        for policy in self.scaling.scale_up["policies"]:
            added = sum(c for t, c in self.changes if c > 0 and now - t < policy["periodSeconds"])
            start = current - added
            step = int(policy["value"]) if policy["type"] == "Pods" else math.ceil(start * policy["value"] / 100)
            limits.append(start + step)
        return max(limits) if self.scaling.scale_up["selectPolicy"] == "Max" else min(limits)

    def _scale_down_limit(self, now: float, current: int) -> int:
        limits: list[int] = []
        for policy in self.scaling.scale_down["policies"]:
            removed = -sum(c for t, c in self.changes if c < 0 and now - t < policy["periodSeconds"])
            start = current + removed
            step = int(policy["value"]) if policy["type"] == "Pods" else math.floor(start * policy["value"] / 100)
            limits.append(start - step)
        return min(limits) if self.scaling.scale_down["selectPolicy"] == "Max" else max(limits)


class _Cluster:
    """The pool's pods, its queue and its autoscaler, advanced one second at a time."""

    def __init__(self, scaling: Scaling, pool: Pool, jobs: list[Job]) -> None:
        self.scaling, self.pool = scaling, pool
        self.autoscaler = _Autoscaler(scaling)
        self.pending = list(jobs)
        self.pods: list[Pod] = []
        self.polls: list[tuple[float, int, int, int]] = []
        self.replicas = scaling.min_replicas

    def run_jobs(self, now: float) -> None:
        """End the jobs whose time has come, and let stopping pods exit, hand back or be killed."""
        for pod in self.live():
            for job in list(pod.jobs):
                assert job.started_at is not None
                if now - job.started_at >= job.duration:
                    job.finished_at = now
                    pod.jobs.remove(job)
            if pod.stopping_since is None:
                continue
            stopped_for = now - pod.stopping_since
            if stopped_for >= self.pool.termination_grace_seconds:
                self._interrupt(pod, "killed")
            elif stopped_for >= self.pool.shutdown_grace_seconds:
                self._interrupt(pod, "handed back")
            if not pod.jobs:
                self._leave(pod, now)  # run_workers returns once nothing runs

    def fetch(self, now: float) -> None:
        """Pods that fetch take waiting jobs, oldest first, up to their concurrency."""
        for pod in self.live():
            while self.pending and pod.stopping_since is None and now >= pod.fetching_from:
                if len(pod.jobs) >= self.pool.concurrency:
                    break
                job = self.pending.pop(0)
                job.started_at, job.deliveries = now, job.deliveries + 1
                pod.jobs.append(job)

    def poll(self, now: float) -> None:
        """KEDA reads the lag, the HPA sets the replicas, the ReplicaSet adds or stops pods."""
        lag = len(self.pending) + sum(len(p.jobs) for p in self.live())  # num_pending + num_ack_pending
        self.replicas = self.autoscaler.desired(now, self.replicas, lag)
        serving = [p for p in self.live() if p.stopping_since is None]
        self.autoscaler.record(now, self.replicas - len(serving))
        for _ in range(self.replicas - len(serving)):
            self.pods.append(Pod(len(self.pods), fetching_from=now + self.pool.start_seconds))
        # Worst case for the jobs: the ReplicaSet happens to pick the busiest, then the newest, pods.
        by_risk = sorted(serving, key=lambda p: (-len(p.jobs), -p.number))
        for pod in by_risk[: max(0, len(serving) - self.replicas)]:
            pod.stopping_since = now
            if not pod.jobs:
                self._leave(pod, now)
        busy = sum(1 for p in self.live() if p.jobs)
        self.polls.append((now, self.replicas, lag, busy))

    def live(self) -> list[Pod]:
        return [p for p in self.pods if p.left_at is None]

    def _interrupt(self, pod: Pod, how: str) -> None:
        for job in pod.jobs:
            job.interrupted.append(how)
            self.pending.append(job)
        pod.jobs_when_it_left = len(pod.jobs)
        pod.jobs.clear()

    @staticmethod
    def _leave(pod: Pod, now: float) -> None:
        pod.left_at = now


def replay(scaling: Scaling, pool: Pool, durations: list[float], seconds: int) -> Replay:
    """Dispatch one job per entry of `durations` at time 0, then nothing more, and run `seconds` seconds."""
    jobs = [Job(number, duration) for number, duration in enumerate(durations)]
    cluster = _Cluster(scaling, pool, jobs)
    for now in range(seconds + 1):
        cluster.run_jobs(now)
        cluster.fetch(now)
        if now % scaling.polling_seconds == 0:
            cluster.poll(now)
    return Replay(jobs, cluster.pods, cluster.polls)
