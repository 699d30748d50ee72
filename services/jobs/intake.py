"""Worker events into the database: idempotent, ordered per job, never backwards."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from aiorch.jobs.v1 import events_pb2
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import Error as JetStreamError
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.common.db import Database, utcnow
from services.common.logging import get_logger
from services.common.messaging import EVENTS_CONSUMER, EVENTS_STREAM
from services.jobs.lifecycle import EventFacts, EventKind, JobFacts, JobState, judge
from services.jobs.metrics import EVENTS_APPLIED, QUEUE_WAIT, count_finished
from services.jobs.models import Job, JobLog, Result
from services.jobs.views import JobView
from services.jobs.watch import Broadcast

log = get_logger(__name__)


@dataclass(frozen=True)
class Applied:
    """A stored change to broadcast."""

    view: JobView
    log_lines: list[str]


def _kind(event: events_pb2.JobEvent) -> EventKind:
    which = event.WhichOneof("kind")
    if which is None:
        raise ValueError("event has no kind")
    return EventKind(which)


def _record(session: Session, job: Job, kind: EventKind, event: events_pb2.JobEvent, now: datetime) -> list[str]:
    """Store what the event carries besides the state; returns the log lines it added."""
    if kind is EventKind.PROGRESS and event.progress.message:
        job.message = event.progress.message
    elif kind is EventKind.LOG:
        session.add(JobLog(job_id=job.id, attempt=job.attempt, level=event.log.level or "info", line=event.log.line))
        return [event.log.line]
    elif kind is EventKind.COMPLETED:
        result = Result(
            job_id=job.id,
            attempt=job.attempt,
            output_keys=list(event.completed.output_keys),
            meta=json_format.MessageToDict(event.completed.meta),
            finished_at=now,
        )
        session.add(result)
        session.flush()
        result.result_url = f"/api/job-results/{result.id}/download"
        job.message = "completed"
    elif kind is EventKind.FAILED:
        job.error = event.failed.reason or "failed"
    elif kind is EventKind.CANCELLED:
        job.error = "cancelled on request"
    return []


class EventIntake:
    """Applies JobEvents from the events stream; one durable consumer shared by every replica."""

    def __init__(self, db: Database, js: JetStreamContext, broadcast: Broadcast) -> None:
        self._db = db
        self._js = js
        self._broadcast = broadcast

    def apply(self, event: events_pb2.JobEvent) -> Applied | None:
        """Store one event if it moves the job; None when it is late, repeated or for another attempt."""
        kind = _kind(event)
        try:
            job_id = uuid.UUID(event.job_id)
        except ValueError:
            return None
        facts = EventFacts(
            kind=kind,
            attempt=event.attempt,
            delivery=event.delivery,
            sequence=event.sequence,
            percent=event.progress.percent,
        )
        with self._db.transaction() as session:
            job = session.scalar(select(Job).where(Job.id == job_id).with_for_update())
            if job is None:
                EVENTS_APPLIED.labels(kind.value, "unknown_job").inc()
                return None
            before = JobState(job.status)
            verdict = judge(JobFacts(before, job.attempt, job.progress, job.last_delivery, job.last_sequence), facts)
            if not verdict.apply:
                EVENTS_APPLIED.labels(kind.value, "ignored").inc()
                return None
            now = utcnow()
            job.last_delivery, job.last_sequence = event.delivery, event.sequence
            if event.worker_id:
                job.worker_id = event.worker_id
            if verdict.new_delivery or before is JobState.PENDING:
                job.attempts += 1
                job.started_at = now
                if before is JobState.PENDING:
                    QUEUE_WAIT.labels(job.type).observe((now - job.created_at).total_seconds())
            if kind is EventKind.STARTED:
                # The worker's deadline for this delivery: the reaper's sign that a silent job is abandoned.
                limit = event.started.time_limit_seconds
                job.deadline_at = now + timedelta(seconds=limit) if limit > 0 else None
            lines = _record(session, job, kind, event, now)
            job.status = verdict.status.value
            job.progress = verdict.progress
            if verdict.status.final:
                job.finished_at = now
                count_finished(job.type, verdict.status.value, job.started_at, now)
            job.version += 1
            job.updated_at = now
            session.flush()
            result_id = session.scalar(select(Result.id).where(Result.job_id == job.id))
            EVENTS_APPLIED.labels(kind.value, "applied").inc()
            return Applied(JobView.of(job, result_id), lines)

    async def _subscribe(self) -> JetStreamContext.PullSubscription:
        return await self._js.pull_subscribe(
            "jobs.events.*",
            durable=EVENTS_CONSUMER,
            stream=EVENTS_STREAM,
            config=ConsumerConfig(
                durable_name=EVENTS_CONSUMER,
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=30,
                max_ack_pending=1000,
            ),
        )

    async def _apply_batch(self, messages: list[Msg]) -> None:
        for index, message in enumerate(messages):
            try:
                event = events_pb2.JobEvent.FromString(message.data)
                _kind(event)
            except (DecodeError, ValueError) as exc:
                log.warning("dropping malformed job event", error=str(exc), subject=message.subject)
                await message.term()
                continue
            try:
                applied = await asyncio.to_thread(self.apply, event)
            except Exception:
                # Keep the order: this event and the rest of the batch come back together, soon.
                for pending in messages[index:]:
                    await pending.nak(delay=1)
                raise
            await message.ack()
            if applied is not None:
                await self._broadcast(applied.view, applied.log_lines)

    async def run(self) -> None:
        """Forever: fetch a batch, apply each event in order, ack it, broadcast what changed."""
        subscription = None
        while True:
            try:
                if subscription is None:
                    subscription = await self._subscribe()
                try:
                    messages = await subscription.fetch(batch=64, timeout=1)
                except (NatsTimeout, TimeoutError):
                    # nats-py's fetch raises either its own TimeoutError or asyncio's when nothing arrives.
                    continue
                await self._apply_batch(messages)
            except (NatsError, JetStreamError, OSError) as exc:
                log.warning("event intake interrupted; retrying", error=str(exc))
                await asyncio.sleep(1)
            except Exception:
                # A database fault: the unacked events come back after ack_wait and are applied then.
                log.exception("event intake failed; retrying")
                await asyncio.sleep(1)
