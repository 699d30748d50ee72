"""Operator repairs: send PENDING jobs to the workers again (after a JetStream store was lost or purged)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select

from services.common.db import Database, utcnow
from services.common.errors import FailedPrecondition, NotFound
from services.common.outbox import enqueue
from services.jobs.lifecycle import JobState
from services.jobs.models import OUTBOX, File, Job
from services.jobs.worker_messages import dispatch_message


def requeue(db: Database, job_ids: list[uuid.UUID], pending_older_than: timedelta | None = None) -> list[uuid.UUID]:
    """Enqueue a fresh dispatch of each PENDING job named (or pending longer than the given age).

    The message id carries the time, so JetStream does not drop it as a duplicate of the lost one;
    the jobs service's relay publishes it. Running and finished jobs are refused: a live worker may
    still be on them (retry a finished one instead).
    """
    with db.transaction() as session:
        statement = select(Job).with_for_update()
        if pending_older_than is not None:
            statement = statement.where(
                Job.status == JobState.PENDING.value, Job.created_at < utcnow() - pending_older_than
            )
        else:
            statement = statement.where(Job.id.in_(job_ids))
        jobs = list(session.scalars(statement))
        if pending_older_than is None:
            missing = set(job_ids) - {j.id for j in jobs}
            if missing:
                raise NotFound(f"no job {', '.join(str(m) for m in sorted(missing))}")
        stamp = utcnow().strftime("%Y%m%dT%H%M%S%f")
        for job in jobs:
            if job.status != JobState.PENDING.value:
                raise FailedPrecondition(f"job {job.id} is {job.status}; only PENDING jobs are requeued")
            input_file = session.get(File, job.input_file_id) if job.input_file_id else None
            message = dispatch_message(job, input_file)
            enqueue(
                session, OUTBOX, type(message)(message.subject, f"{message.msg_id}:requeue:{stamp}", message.payload)
            )
        return [job.id for job in jobs]
