"""The messages the jobs service sends workers through its outbox: dispatches and cancel flags."""

from __future__ import annotations

from aiorch.jobs.v1 import events_pb2, types_pb2

from services.common.messaging import CANCEL_BUCKET, dispatch_subject
from services.common.outbox import OutboxMessage
from services.common.timestamps import to_timestamp
from services.jobs.models import File, Job


def output_prefix(job: Job) -> str:
    """Where an attempt's outputs go in the blob store."""
    return f"results/{job.id}/{job.attempt}"


def dispatch_message(job: Job, input_file: File | None) -> OutboxMessage:
    """The dispatch of the job's current attempt, deduplicated by JetStream on its message id."""
    params = types_pb2.JobParams.FromString(job.params)
    payload = events_pb2.DispatchJob(
        job_id=str(job.id),
        type=types_pb2.JobType.Value(job.type),
        attempt=job.attempt,
        params=params,
        input_keys=[input_file.blob_key] if input_file else [],
        input_content_types=[input_file.content_type] if input_file else [],
        output_prefix=output_prefix(job),
        created_at=to_timestamp(job.created_at),
        input_url=job.input_url,
        grant=job.dispatch_grant,
    )
    msg_id = str(job.id) if job.attempt == 1 else f"{job.id}:{job.attempt}"
    return OutboxMessage(dispatch_subject(job.type), msg_id, payload.SerializeToString())


def cancel_message(job: Job) -> OutboxMessage:
    """A KV put of the cancel flag (publishing to `$KV.<bucket>.<key>` is a put), through the outbox."""
    return OutboxMessage(f"$KV.{CANCEL_BUCKET}.{job.id}", f"cancel:{job.id}:{job.attempt}", str(job.attempt).encode())
