"""Worker events into the database: idempotent, ordered per job, never backwards, only from the job's worker.

An event is applied only when it carries the grant of the job's current dispatch (only a worker that
received that dispatch knows it; any other client of the `workers` NATS user cannot forge events), and
a completion only when every output it names lies under the attempt's own result prefix (a worker
cannot point a result at someone else's files).
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime

from nats.js import JetStreamContext
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.common.db import Database, utcnow
from services.common.logging import get_logger
from services.common.loops import Durable, DurableConsumer
from services.common.messaging import EVENTS_CONSUMER, EVENTS_STREAM, WORK_QUEUES
from services.jobs.job_metrics import EVENTS_APPLIED
from services.jobs.lifecycle import EventFacts, EventKind, JobFacts, JobState, Verdict, judge
from services.jobs.models import Job, JobLog, Result
from services.jobs.transitions import apply_event, holds_grant
from services.jobs.views import JobView
from services.jobs.watch import Broadcast
from services.jobs.wire import worker_event
from services.jobs.worker_events import WorkerEvent
from services.jobs.worker_messages import output_prefix

log = get_logger(__name__)

EVENTS_DURABLE = Durable(EVENTS_STREAM, EVENTS_CONSUMER, WORK_QUEUES[EVENTS_STREAM], ack_wait=30, batch=64)


@dataclass(frozen=True)
class Applied:
    """A stored change to broadcast."""

    view: JobView
    log_lines: list[str]


def outputs_outside(job: Job, output_keys: tuple[str, ...]) -> list[str]:
    """The output keys that do not lie under the job's current attempt's result prefix."""
    prefix = output_prefix(job) + "/"
    return [key for key in output_keys if not key.startswith(prefix) or ".." in key.split("/")]


def _record(session: Session, job: Job, event: WorkerEvent, now: datetime) -> list[str]:
    """Store what the event carries besides the state; returns the log lines it added."""
    kind = event.kind
    if kind is EventKind.PROGRESS and event.message:
        job.message = event.message
    elif kind is EventKind.LOG:
        session.add(JobLog(job_id=job.id, attempt=job.attempt, level=event.level or "info", line=event.line))
        return [event.line]
    elif kind is EventKind.COMPLETED:
        session.add(
            Result(
                job_id=job.id,
                attempt=job.attempt,
                output_keys=list(event.output_keys),
                meta=dict(event.meta),
                finished_at=now,
            )
        )
        job.message = "completed"
    return []


def _error(event: WorkerEvent) -> str:
    if event.kind is EventKind.FAILED:
        return event.reason or "failed"
    if event.kind is EventKind.CANCELLED:
        return "cancelled on request"
    return ""


class EventIntake:
    """Applies worker events from the events stream; one durable consumer shared by every replica."""

    def __init__(self, db: Database, js: JetStreamContext, broadcast: Broadcast) -> None:
        self._db = db
        self._broadcast = broadcast
        self._consumer = DurableConsumer(js, EVENTS_DURABLE, worker_event, self._handle)

    def apply(self, event: WorkerEvent) -> Applied | None:
        """Store one event if it moves the job; None when it is late, repeated, for another attempt or forged."""
        kind = event.kind
        try:
            job_id = uuid.UUID(event.job_id)
        except ValueError:
            return None
        facts = EventFacts(
            kind=kind,
            attempt=event.attempt,
            delivery=event.delivery,
            sequence=event.sequence,
            percent=event.percent,
        )
        with self._db.transaction() as session:
            job = session.scalar(select(Job).where(Job.id == job_id).with_for_update())
            if job is None:
                EVENTS_APPLIED.labels(kind.value, "unknown_job").inc()
                return None
            if event.attempt == job.attempt and not holds_grant(job, event.grant):
                EVENTS_APPLIED.labels(kind.value, "refused").inc()
                log.warning("refused a worker event without the dispatch's grant", job_id=event.job_id)
                return None
            verdict = judge(
                JobFacts(JobState(job.status), job.attempt, job.progress, job.last_delivery, job.last_sequence), facts
            )
            if not verdict.apply:
                EVENTS_APPLIED.labels(kind.value, "ignored").inc()
                return None
            now = utcnow()
            error = _error(event)
            if kind is EventKind.COMPLETED and (outside := outputs_outside(job, event.output_keys)):
                # Only a broken or hostile worker does this: the job fails instead of pointing at those files.
                log.warning("refused outputs outside the job's result prefix", job_id=event.job_id, keys=outside)
                EVENTS_APPLIED.labels(kind.value, "refused").inc()
                verdict = Verdict(True, JobState.FAILED, verdict.progress, verdict.new_delivery)
                error = "the worker reported outputs outside the job's result prefix"
                event = WorkerEvent(**{**event.__dict__, "kind": EventKind.FAILED, "output_keys": ()})
            time_limit = event.time_limit_seconds if kind is EventKind.STARTED else None
            lines = _record(session, job, event, now)
            apply_event(job, verdict, event.delivery, event.sequence, event.worker_id, time_limit, now, error)
            session.flush()
            result_id = session.scalar(select(Result.id).where(Result.job_id == job.id))
            EVENTS_APPLIED.labels(kind.value, "applied").inc()
            return Applied(JobView.of(job, result_id), lines)

    async def _handle(self, event: WorkerEvent) -> None:
        applied = await asyncio.to_thread(self.apply, event)
        if applied is not None:
            await self._broadcast(applied.view, applied.log_lines)

    async def run(self) -> None:
        """Forever: fetch a batch, apply each event in order, broadcast what changed, ack it."""
        await self._consumer.run()
