"""The durable pull consumer of one job type, and the loop that keeps up to `concurrency` deliveries running."""

from __future__ import annotations

import asyncio
import time

import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from services.common import messaging
from services.common.logging import get_logger
from services.workers.runtime import JobRunner

log = get_logger(__name__)

FETCH_TIMEOUT_SECONDS = 1.0  # also how long shutdown waits for the fetch in flight
# Every worker process of a type shares the durable, so its limit covers them all; each process keeps its
# own `concurrency` by fetching no more than it has free slots.
MIN_MAX_ACK_PENDING = 1000


def consumer_config(job_type: str, ack_wait: float, max_deliver: int, concurrency: int) -> ConsumerConfig:
    """The durable consumer of a type.

    JetStream may deliver once more than `max_deliver`: that delivery only exists when the worker of the
    last attempt died without an outcome, and the runtime fails the job at once on it.
    """
    return ConsumerConfig(
        durable_name=messaging.worker_consumer(job_type),
        filter_subject=messaging.dispatch_subject(job_type),
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        ack_wait=ack_wait,
        max_deliver=max_deliver + 1,
        max_ack_pending=max(MIN_MAX_ACK_PENDING, concurrency),
    )


class TypeConsumer:
    """Fetches one type's dispatch messages while there are free slots, and runs each in its own task."""

    def __init__(self, js: JetStreamContext, config: ConsumerConfig, runner: JobRunner, concurrency: int) -> None:
        self._js = js
        self._config = config
        self._runner = runner
        self._concurrency = concurrency
        self.in_flight: set[asyncio.Task[None]] = set()
        # When the fetch loop last came round (a fetch answered, with a message or none), and whether it
        # now waits because every slot is busy: what the worker's /healthz reads (services/workers/liveness.py).
        self.last_round = time.monotonic()
        self.saturated = False

    async def open(self) -> None:
        """Create the durable, or update it to this config (the server creates or updates in one call)."""
        await self._js.add_consumer(messaging.DISPATCH_STREAM, self._config)
        self._sub = await self._js.pull_subscribe_bind(
            durable=self._config.durable_name, stream=messaging.DISPATCH_STREAM
        )

    async def close(self) -> None:
        """Stop the subscription (a pull subscription left open makes the connection's drain hang)."""
        await self._sub.unsubscribe()

    def _start(self, msg: Msg) -> None:
        task = asyncio.create_task(self._runner.process(msg))
        self.in_flight.add(task)
        task.add_done_callback(self.in_flight.discard)

    async def run(self, stopping: asyncio.Event) -> None:
        """Fetch and start deliveries until `stopping` is set; what was fetched is always started."""
        stop_waiter = asyncio.ensure_future(stopping.wait())
        try:
            while not stopping.is_set():
                free = self._concurrency - len(self.in_flight)
                if free <= 0:
                    self.saturated = True
                    await asyncio.wait({*self.in_flight, stop_waiter}, return_when=asyncio.FIRST_COMPLETED)
                    self.saturated = False
                    self.last_round = time.monotonic()
                    continue
                try:
                    # One at a time: nats-py holds a batch fetch open until the batch fills or the timeout
                    # passes, so a worker with free slots would sit on a job it already has for up to a second.
                    messages = await self._sub.fetch(batch=1, timeout=FETCH_TIMEOUT_SECONDS)
                except (nats.errors.TimeoutError, TimeoutError):
                    # nats-py's fetch raises either its own TimeoutError or asyncio's when nothing arrives.
                    self.last_round = time.monotonic()
                    continue
                except (nats.errors.Error, OSError) as exc:
                    log.warning("fetch failed; trying again", consumer=self._config.durable_name, error=str(exc))
                    await asyncio.sleep(FETCH_TIMEOUT_SECONDS)
                    continue
                self.last_round = time.monotonic()
                for msg in messages:
                    self._start(msg)
        finally:
            stop_waiter.cancel()
