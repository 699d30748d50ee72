"""Queue depth per job type (services/common/queues.py reads it from JetStream), exported as gauges.

Every jobs replica polls and exports the same values; alerts and panels take `max by (type)`.
"""

from __future__ import annotations

from collections.abc import Iterable

from nats.js import JetStreamContext

from services.common.logging import get_logger
from services.common.loops import Backoff, run_forever
from services.common.queues import JOB_TYPES, QueueState, read_queues
from services.jobs.job_metrics import (
    QUEUE_CONSUMER_PRESENT,
    QUEUE_DEPTH,
    QUEUE_IN_FLIGHT,
    QUEUE_POLL_ERRORS,
    QUEUE_PULLS_WAITING,
)

log = get_logger(__name__)

POLL_SECONDS = 5.0


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

    async def _poll(self) -> None:
        await self.poll_once()

    async def run(self) -> None:
        """Forever: poll, then sleep. A failed read keeps the last values and is counted and logged once."""
        await run_forever(
            "queue metrics",
            self._poll,
            interval=self._interval,
            backoff=Backoff(self._interval, self._interval),
            on_fault=lambda _: QUEUE_POLL_ERRORS.inc(),
        )
