"""What the job queues hold right now, read from JetStream's consumer state."""

from __future__ import annotations

from dataclasses import dataclass

from nats.js.errors import NotFoundError

from services.common import messaging

JOB_TYPES = ("STT", "TTS", "VOICE_CLONING", "DUBBING", "AI_STORIES")


@dataclass(frozen=True)
class QueueRow:
    """One job type's queue."""

    job_type: str
    waiting: int  # dispatched, not yet taken by a worker
    in_flight: int  # taken, not yet acknowledged (running, or about to be redelivered)
    pulling: int  # worker fetch requests waiting for work; 0 with waiting > 0 means no worker


async def queue_report(nats_url: str) -> list[QueueRow]:
    """One row per job type; a type whose consumer does not exist yet shows its waiting messages only."""
    nc = await messaging.connect(nats_url, "aiorch-cli", attempts=3)
    try:
        js = nc.jetstream()
        rows = []
        for job_type in JOB_TYPES:
            try:
                info = await js.consumer_info(messaging.DISPATCH_STREAM, messaging.worker_consumer(job_type))
                rows.append(QueueRow(job_type, info.num_pending or 0, info.num_ack_pending or 0, info.num_waiting or 0))
            except NotFoundError:
                subject = messaging.dispatch_subject(job_type)
                stream = await js.stream_info(messaging.DISPATCH_STREAM, subjects_filter=subject)
                waiting = (stream.state.subjects or {}).get(subject, 0)
                rows.append(QueueRow(job_type, waiting, 0, 0))
        return rows
    finally:
        await nc.close()
