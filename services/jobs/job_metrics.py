"""Prometheus metrics of the jobs service."""

from __future__ import annotations

from datetime import datetime

from prometheus_client import Counter, Gauge, Histogram

JOBS_CREATED = Counter("aiorch_jobs_created_total", "Jobs accepted.", ["type"])
JOBS_FINISHED = Counter("aiorch_jobs_finished_total", "Jobs that reached a final state.", ["type", "state"])
QUEUE_WAIT = Histogram(
    "aiorch_job_queue_wait_seconds",
    "From acceptance to the first start of an attempt.",
    ["type"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
)
RUN_SECONDS = Histogram(
    "aiorch_job_run_seconds",
    "From start to the final state of an attempt.",
    ["type", "state"],
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
)
WATCH_STREAMS = Gauge("aiorch_watch_streams_active", "Open watch streams.", ["kind"])
JOBS_REAPED = Counter(
    "aiorch_jobs_reaped_total", "RUNNING jobs failed by the reaper because their worker was gone.", ["type"]
)
EVENTS_APPLIED = Counter("aiorch_job_events_total", "Worker events received, by kind and outcome.", ["kind", "outcome"])

# Set by services/jobs/queue_metrics.py from JetStream's view of each type's dispatch consumer. Every
# replica exports the same values; aggregate with max by (type), not sum.
QUEUE_DEPTH = Gauge("aiorch_queue_depth", "Dispatched jobs waiting for a worker (not yet delivered).", ["type"])
QUEUE_IN_FLIGHT = Gauge(
    "aiorch_queue_in_flight", "Dispatched jobs delivered to a worker and not yet acknowledged.", ["type"]
)
QUEUE_PULLS_WAITING = Gauge(
    "aiorch_queue_pulls_waiting", "Open pull requests on the type's consumer (idle worker slots).", ["type"]
)
QUEUE_CONSUMER_PRESENT = Gauge(
    "aiorch_queue_consumer_present", "1 when the type's worker consumer exists (a worker ever started).", ["type"]
)
QUEUE_POLL_ERRORS = Counter("aiorch_queue_poll_errors_total", "Failed reads of JetStream's queue state.")


def count_finished(job_type: str, state: str, started_at: datetime | None, finished_at: datetime) -> None:
    """Count a job that reached the final `state`, and its attempt's run time when the attempt had started."""
    JOBS_FINISHED.labels(job_type, state).inc()
    if started_at is not None:
        RUN_SECONDS.labels(job_type, state).observe((finished_at - started_at).total_seconds())
