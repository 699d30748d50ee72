"""The jobs service's edge converters: domain views to protobuf messages and wire messages to domain values, once."""

from __future__ import annotations

import functools
import uuid
from datetime import UTC, datetime
from typing import Any

from aiorch.jobs.v1 import events_pb2, files_pb2, jobs_pb2, results_pb2, types_pb2
from google.protobuf import json_format, struct_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from services.common.timestamps import to_timestamp
from services.jobs.lifecycle import EventKind, JobState
from services.jobs.views import FileView, JobView, ResultView
from services.jobs.watch import JobChange
from services.jobs.worker_events import WorkerEvent


def worker_event(data: bytes) -> WorkerEvent:
    """A JobEvent off the wire; DecodeError or ValueError when it is not one (the intake drops it)."""
    event = events_pb2.JobEvent.FromString(data)
    which = event.WhichOneof("kind")
    if which is None:
        raise ValueError("event has no kind")
    return WorkerEvent(
        job_id=event.job_id,
        kind=EventKind(which),
        attempt=event.attempt,
        delivery=event.delivery,
        sequence=event.sequence,
        worker_id=event.worker_id,
        grant=event.grant,
        time_limit_seconds=event.started.time_limit_seconds,
        percent=event.progress.percent,
        message=event.progress.message,
        line=event.log.line,
        level=event.log.level,
        output_keys=tuple(event.completed.output_keys),
        meta=json_format.MessageToDict(event.completed.meta),
        reason=event.failed.reason,
    )


def result_url(result_id: str) -> str:
    """Where the gateway serves a result's main file (REST), built here at the edge, never stored."""
    return f"/api/job-results/{result_id}/download"


def job_message(view: JobView) -> jobs_pb2.Job:
    """The Job message of a view."""
    return jobs_pb2.Job(
        id=str(view.id),
        project_id=str(view.project_id),
        name=view.name,
        description=view.description,
        type=types_pb2.JobType.Value(view.type),
        status=types_pb2.JobState.Value(view.status.value),
        progress=view.progress,
        params=types_pb2.JobParams.FromString(view.params),
        input_file_id=str(view.input_file_id) if view.input_file_id else "",
        input_url=view.input_url,
        client_request_id=view.client_request_id,
        attempts=view.attempts,
        error=view.error,
        owner=str(view.owner_id),
        worker_id=view.worker_id,
        message=view.message,
        created_at=to_timestamp(view.created_at),
        started_at=to_timestamp(view.started_at),
        finished_at=to_timestamp(view.finished_at),
        updated_at=to_timestamp(view.updated_at),
        result_id=str(view.result_id) if view.result_id else "",
        attempt=view.attempt,
    )


# A change is written to every watcher within moments of its arrival, then never again: a few recent ones
# cover the fan-out (a watcher that falls further behind converts again), and bound the memory the cache
# holds to a few jobs' size (a job may weigh up to ~600 KB, services/common/field_limits.py).
@functools.lru_cache(maxsize=32)
def update_message(change: JobChange) -> jobs_pb2.JobUpdate:
    """One watch-stream message, built once per change however many streams it is written to."""
    return jobs_pb2.JobUpdate(job=job_message(change.view), log_lines=change.log_lines, version=change.view.version)


def encode_change(change: JobChange) -> bytes:
    """A change as broadcast between replicas (the JobUpdate message)."""
    return update_message(change).SerializeToString()


def decode_change(data: bytes) -> JobChange:
    """A broadcast change back into the domain's terms."""
    update = jobs_pb2.JobUpdate.FromString(data)
    job = update.job
    view = JobView(
        id=uuid.UUID(job.id),
        project_id=uuid.UUID(job.project_id),
        owner_id=uuid.UUID(job.owner),
        name=job.name,
        description=job.description,
        type=types_pb2.JobType.Name(job.type),
        status=JobState(types_pb2.JobState.Name(job.status)),
        progress=job.progress,
        message=job.message,
        params=job.params.SerializeToString(),
        input_file_id=uuid.UUID(job.input_file_id) if job.input_file_id else None,
        input_url=job.input_url,
        client_request_id=job.client_request_id,
        attempt=job.attempt,
        attempts=job.attempts,
        error=job.error,
        worker_id=job.worker_id,
        version=update.version,
        created_at=_moment(job, "created_at") or datetime.fromtimestamp(0, UTC),
        started_at=_moment(job, "started_at"),
        finished_at=_moment(job, "finished_at"),
        updated_at=_moment(job, "updated_at") or datetime.fromtimestamp(0, UTC),
        result_id=uuid.UUID(job.result_id) if job.result_id else None,
    )
    return JobChange(view, tuple(update.log_lines))


def _moment(job: jobs_pb2.Job, field: Any) -> datetime | None:
    if not job.HasField(field):
        return None
    stamp: Timestamp = getattr(job, field)
    return stamp.ToDatetime(tzinfo=UTC)


def file_message(view: FileView) -> files_pb2.File:
    """The File message of a view."""
    return files_pb2.File(
        id=str(view.id),
        filename=view.filename,
        content_type=view.content_type,
        size=view.size,
        sha256=view.sha256,
        owner=str(view.owner_id),
        created_at=to_timestamp(view.created_at),
    )


def result_message(view: ResultView) -> results_pb2.JobResult:
    """The JobResult message of a view."""
    meta = struct_pb2.Struct()
    meta.update(view.meta)
    return results_pb2.JobResult(
        id=str(view.id),
        job_id=str(view.job_id),
        result_file=view.files[0] if view.files else "",
        result_url=view.result_url or result_url(str(view.id)),
        logs=view.logs,
        meta=meta,
        files=view.files,
        created_at=to_timestamp(view.created_at),
        finished_at=to_timestamp(view.finished_at),
    )
