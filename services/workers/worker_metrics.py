"""Prometheus metrics of the workers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from prometheus_client import Counter, Gauge, Histogram

JOBS = Counter(
    "aiorch_worker_jobs_total",
    "Deliveries handled, by outcome: completed, failed, cancelled, retried, handed_back.",
    ["type", "outcome"],
)
RUN_SECONDS = Histogram(
    "aiorch_worker_run_seconds",
    "Time from taking a delivery to its outcome.",
    ["type"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)
QUEUE_WAIT_SECONDS = Histogram(
    "aiorch_worker_queue_wait_seconds",
    "Time from a job's creation to a worker taking its first delivery.",
    ["type"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600),
)
BUSY = Gauge("aiorch_worker_busy", "Jobs running now.", ["type"])


def observe_queue_wait(job_type: str, created_at: datetime | None, now: datetime) -> None:
    """Record how long a job waited for a worker (nothing if its creation time is unknown)."""
    if created_at is not None:
        QUEUE_WAIT_SECONDS.labels(job_type).observe(max(0.0, (now - created_at).total_seconds()))


@contextmanager
def running(job_type: str) -> Iterator[None]:
    """Count the job as busy and time it while the block runs."""
    BUSY.labels(job_type).inc()
    started = time.monotonic()
    try:
        yield
    finally:
        BUSY.labels(job_type).dec()
        RUN_SECONDS.labels(job_type).observe(time.monotonic() - started)
