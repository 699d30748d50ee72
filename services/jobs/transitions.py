"""The only code that moves a stored job: its state, attempt, version, timestamps and counters.

`lifecycle` decides what may happen (pure rules); these functions make it happen on a row, so a
state, its `finished_at`, the version that watchers order by and the finished-jobs metrics always
change together. JobBook, the event intake, the reaper, the results book and the project cleanup
all call them; none of them sets `status` or `version` itself.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from services.common.db import utcnow
from services.jobs.job_metrics import QUEUE_WAIT, count_finished
from services.jobs.lifecycle import JobState, Verdict
from services.jobs.models import Job, JobAttempt


def new_grant() -> str:
    """A fresh dispatch grant: only the worker that receives the attempt's dispatch learns it."""
    return secrets.token_urlsafe(32)


def holds_grant(job: Job, grant: str) -> bool:
    """True when an event proves it comes from a holder of the current attempt's dispatch.

    A job dispatched before grants existed (migration 0004) has none, and neither have its workers' events:
    they are accepted, so an upgrade strands no job; every attempt dispatched since carries a grant.
    """
    return hmac.compare_digest(job.dispatch_grant.encode(), grant.encode())


def touch(job: Job, now: datetime | None = None) -> None:
    """A stored change watchers must see: the version orders them, `updated_at` dates them."""
    job.version += 1
    job.updated_at = now or utcnow()


def finish(job: Job, state: JobState, error: str = "", now: datetime | None = None) -> None:
    """Move an active job to a final state (COMPLETED sets progress 100), counted once in the metrics."""
    if not state.final:
        raise ValueError(f"{state.value} is not a final state")
    if JobState(job.status).final:
        raise ValueError(f"the job is already {job.status}")
    at = now or utcnow()
    job.status = state.value
    if state is JobState.COMPLETED:
        job.progress = 100
    if error:
        job.error = error
    job.finished_at = at
    count_finished(job.type, state.value, job.started_at, at)
    touch(job, at)


def new_attempt(session: Session, job: Job) -> None:
    """Start a FAILED or CANCELLED job over as the next attempt; the old one goes to the history."""
    session.add(
        JobAttempt(
            job_id=job.id,
            attempt=job.attempt,
            status=job.status,
            error=job.error,
            worker_id=job.worker_id,
            started_at=job.started_at,
            finished_at=job.finished_at,
        )
    )
    job.attempt += 1
    job.status = JobState.PENDING.value
    job.progress, job.message, job.error, job.worker_id = 0, "", "", ""
    job.started_at = job.finished_at = job.deadline_at = None
    job.cancel_requested = False
    job.last_delivery = job.last_sequence = 0
    job.dispatch_grant = new_grant()
    touch(job)


def replace_attempt(job: Job) -> None:
    """Take the next attempt number for a pending job whose dispatch was called off (new parameters).

    The caller touches the job once with its other changes.
    """
    job.attempt += 1
    job.dispatch_grant = new_grant()


def apply_event(
    job: Job,
    verdict: Verdict,
    delivery: int,
    sequence: int,
    worker_id: str,
    time_limit_seconds: float | None,
    now: datetime,
    error: str = "",
) -> None:
    """Apply a worker event that `lifecycle.judge` accepted.

    A new delivery (or the first start) counts an attempt's start and its queue wait;
    `time_limit_seconds` (from a `started` event) sets the deadline the reaper judges by.
    """
    before = JobState(job.status)
    job.last_delivery, job.last_sequence = delivery, sequence
    if worker_id:
        job.worker_id = worker_id
    if verdict.new_delivery or before is JobState.PENDING:
        job.attempts += 1
        job.started_at = now
        if before is JobState.PENDING:
            QUEUE_WAIT.labels(job.type).observe((now - job.created_at).total_seconds())
    if time_limit_seconds is not None:
        job.deadline_at = now + timedelta(seconds=time_limit_seconds) if time_limit_seconds > 0 else None
    job.progress = verdict.progress
    if verdict.status.final:
        finish(job, verdict.status, error=error, now=now)
        return
    job.status = verdict.status.value
    touch(job, now)
