"""Domain views to protobuf messages, once, at the edge."""

from __future__ import annotations

from aiorch.jobs.v1 import files_pb2, jobs_pb2, results_pb2, types_pb2
from google.protobuf import struct_pb2

from services.common.convert import to_timestamp
from services.jobs.views import FileView, JobView, ResultView


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
    )


def update_message(view: JobView, log_lines: list[str]) -> jobs_pb2.JobUpdate:
    """One watch-stream message."""
    return jobs_pb2.JobUpdate(job=job_message(view), log_lines=log_lines, version=view.version)


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
        result_url=view.result_url,
        logs=view.logs,
        meta=meta,
        files=view.files,
        created_at=to_timestamp(view.created_at),
        finished_at=to_timestamp(view.finished_at),
    )
