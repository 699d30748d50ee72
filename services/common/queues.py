"""What the job queues hold right now, read from JetStream's consumer state.

Each job type has a subject on the dispatch stream and one durable pull consumer shared by its workers.
The consumer's info says how many messages wait (`num_pending`), how many are out with a worker and not yet
acknowledged (`num_ack_pending`) and how many pull requests are open (`num_waiting`: idle worker slots).
A type whose consumer does not exist yet (no worker of that type ever started) still has its messages in
the stream: the depth then is the stream's count for the type's subject (a work-queue stream keeps only
unacknowledged messages).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from services.common import job_types, messaging
from services.common.config import ProcessSettings

# One queue per job type.
JOB_TYPES = job_types.NAMES


@dataclass(frozen=True)
class QueueState:
    """JetStream's view of one job type's queue."""

    depth: int  # dispatched, not yet taken by a worker
    in_flight: int  # taken, not yet acknowledged (running, or about to be redelivered)
    pulls_waiting: int  # worker fetch requests waiting for work; 0 with depth > 0 means no worker
    consumer_present: bool


async def read_queues(js: JetStreamContext, types: Iterable[str] = JOB_TYPES) -> dict[str, QueueState]:
    """The queue state of each type (NATS errors propagate)."""
    stream = await js.stream_info(messaging.DISPATCH_STREAM, subjects_filter="jobs.dispatch.*")
    stored = stream.state.subjects or {}
    states: dict[str, QueueState] = {}
    for job_type in types:
        try:
            info = await js.consumer_info(messaging.DISPATCH_STREAM, messaging.worker_consumer(job_type))
        except NotFoundError:
            states[job_type] = QueueState(stored.get(messaging.dispatch_subject(job_type), 0), 0, 0, False)
            continue
        states[job_type] = QueueState(
            depth=info.num_pending or 0,
            in_flight=info.num_ack_pending or 0,
            pulls_waiting=info.num_waiting or 0,
            consumer_present=True,
        )
    return states


async def queue_report(settings: ProcessSettings) -> dict[str, QueueState]:
    """Connect (as the operators' NATS user), read every type's queue, disconnect (the `aiorch queue` command)."""
    nc = await messaging.connect(
        settings.nats_url, "aiorch-cli", settings.nats_user, settings.nats_password.get_secret_value(), attempts=3
    )
    try:
        return await read_queues(nc.jetstream())
    finally:
        await nc.close()
