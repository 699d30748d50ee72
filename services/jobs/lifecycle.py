"""The job state machine, written once: the API and the event intake both go through it.

Pure functions over plain values, so the rules are tested without a database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class JobState(StrEnum):
    """Where a job is: PENDING -> RUNNING -> COMPLETED | FAILED | CANCELLED."""

    PENDING = "PENDING"  # accepted, waiting for a worker
    RUNNING = "RUNNING"  # a worker is on it
    COMPLETED = "COMPLETED"  # finished with a result
    FAILED = "FAILED"  # finished without a result; `error` says why
    CANCELLED = "CANCELLED"  # stopped on request

    @property
    def final(self) -> bool:
        """True once nothing can change the job (except a retry)."""
        return self in FINAL


FINAL = frozenset({JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED})


class EventKind(StrEnum):
    """What a worker reports."""

    STARTED = "started"
    PROGRESS = "progress"
    LOG = "log"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class JobFacts:
    """The stored facts an event is judged against."""

    status: JobState
    attempt: int
    progress: int
    last_delivery: int
    last_sequence: int


@dataclass(frozen=True)
class EventFacts:
    """The identity and kind of a worker event."""

    kind: EventKind
    attempt: int
    delivery: int
    sequence: int
    percent: int = 0


@dataclass(frozen=True)
class Verdict:
    """What applying an event does: nothing, or move to `status` (maybe the same) with `progress`."""

    apply: bool
    status: JobState
    progress: int
    new_delivery: bool = False
    reason: str = ""


def judge(job: JobFacts, event: EventFacts) -> Verdict:
    """Decide what an event does to a job.

    An event is ignored when it belongs to another attempt, when the job is already final
    (a late event never moves a job backwards), when it comes from an older delivery than
    one already seen (a worker presumed dead woke up), or when it repeats a sequence
    number already applied. Progress never goes down.
    """
    if event.attempt != job.attempt:
        return Verdict(False, job.status, job.progress, reason="other attempt")
    if job.status.final:
        return Verdict(False, job.status, job.progress, reason="job is final")
    if event.delivery < job.last_delivery:
        return Verdict(False, job.status, job.progress, reason="older delivery")
    if event.delivery == job.last_delivery and event.sequence <= job.last_sequence:
        return Verdict(False, job.status, job.progress, reason="duplicate")
    new_delivery = event.delivery > job.last_delivery
    progress = job.progress
    status = job.status
    if event.kind in (EventKind.STARTED, EventKind.PROGRESS, EventKind.LOG):
        status = JobState.RUNNING
        if event.kind is EventKind.PROGRESS:
            progress = max(progress, min(100, max(0, event.percent)))
    elif event.kind is EventKind.COMPLETED:
        status, progress = JobState.COMPLETED, 100
    elif event.kind is EventKind.FAILED:
        status = JobState.FAILED
    elif event.kind is EventKind.CANCELLED:
        status = JobState.CANCELLED
    return Verdict(True, status, progress, new_delivery=new_delivery)


def abandoned(status: JobState, deadline: datetime | None, now: datetime, grace: timedelta) -> bool:
    """True for a RUNNING job whose worker's deadline passed more than `grace` ago: that worker is gone.

    A live worker stops the job at its deadline and reports the outcome within seconds, and a
    redelivery to another worker moves the deadline; so silence past deadline + grace means nobody
    runs the job. A job whose worker reported no time limit has no deadline and is never judged so.
    """
    return status is JobState.RUNNING and deadline is not None and now > deadline + grace


def may_cancel(status: JobState) -> bool:
    """Pending and running jobs can be cancelled."""
    return not status.final


def may_retry(status: JobState) -> bool:
    """Failed and cancelled jobs can run again as a new attempt."""
    return status in (JobState.FAILED, JobState.CANCELLED)


def may_edit_params(status: JobState) -> bool:
    """Parameters change only before a worker saw them."""
    return status is JobState.PENDING
