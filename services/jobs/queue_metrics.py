"""Queue depth per job type, read from JetStream and exported as gauges.

Each job type has a subject on the dispatch stream and one durable pull consumer shared by its workers.
The consumer's info says how many messages wait (`num_pending`), how many are out with a worker and not yet
acknowledged (`num_ack_pending`) and how many pull requests are open (`num_waiting`: idle worker slots).
A type whose consumer does not exist yet (no worker of that type ever started) still has its messages in
the stream: the depth then is the stream's count for the type's subject (a work-queue stream keeps only
unacknowledged messages), and `aiorch_queue_consumer_present` is 0.

Every jobs replica polls and exports the same values; alerts and panels take `max by (type)`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass

from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.errors import Error as JetStreamError
from nats.js.errors import NotFoundError

from services.common import messaging
from services.common.logging import get_logger
from services.jobs import media
from services.jobs.metrics import (
    QUEUE_CONSUMER_PRESENT,
    QUEUE_DEPTH,
    QUEUE_IN_FLIGHT,
    QUEUE_POLL_ERRORS,
    QUEUE_PULLS_WAITING,
)

log = get_logger(__name__)

JOB_TYPES: tuple[str, ...] = tuple(media.INPUT_KINDS)
POLL_SECONDS = 5.0


@dataclass(frozen=True)
class QueueState:
    """JetStream's view of one job type's queue."""

    depth: int
    in_flight: int
    pulls_waiting: int
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


def export(states: dict[str, QueueState]) -> None:
    """Set the gauges from `states`."""
    for job_type, state in states.items():
        QUEUE_DEPTH.labels(job_type).set(state.depth)
        QUEUE_IN_FLIGHT.labels(job_type).set(state.in_flight)
        QUEUE_PULLS_WAITING.labels(job_type).set(state.pulls_waiting)
        QUEUE_CONSUMER_PRESENT.labels(job_type).set(1 if state.consumer_present else 0)


class QueueMetrics:
    """Polls JetStream every `interval` seconds and keeps the queue gauges current."""

    def __init__(self, js: JetStreamContext, types: Iterable[str] = JOB_TYPES, interval: float = POLL_SECONDS) -> None:
        self._js = js
        self._types = tuple(types)
        self._interval = interval

    async def poll_once(self) -> dict[str, QueueState]:
        """Read every type's queue and export it."""
        states = await read_queues(self._js, self._types)
        export(states)
        return states

    async def run(self) -> None:
        """Forever: poll, then sleep. A failed read keeps the last values and is counted and logged once."""
        failing = False
        while True:
            try:
                await self.poll_once()
                if failing:
                    log.info("queue metrics readable again")
                failing = False
            except (NatsError, JetStreamError, TimeoutError, OSError) as exc:
                QUEUE_POLL_ERRORS.inc()
                if not failing:
                    log.warning("cannot read queue state from JetStream; will retry", error=str(exc))
                failing = True
            except Exception:
                QUEUE_POLL_ERRORS.inc()
                log.exception("queue metrics error; will retry")
            await asyncio.sleep(self._interval)
