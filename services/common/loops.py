"""Background loops and durable consumers, written once: backoff, fault logging, metrics and shutdown.

Every long-running task of a service (the outbox relay, the event intake, the project cleanup, the reaper,
the revocation watch, the queue metrics) is a `step` run forever by `run_forever`: a fault is logged once
while it lasts, counted, and the step retried after a growing pause; cancellation (shutdown) passes
straight through. `DurableConsumer` adds the JetStream side every consumer shares: subscribe (again after a
fault), fetch a batch, decode or terminate, handle in order, ack, and nak what is left of the batch when a
handler fails, so the order is kept.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from google.protobuf.message import DecodeError
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import Error as JetStreamError
from prometheus_client import Counter

from services.common.logging import get_logger

log = get_logger(__name__)

# Faults of the infrastructure a loop depends on: expected during outages, logged without a stack trace.
TRANSIENT: tuple[type[BaseException], ...] = (NatsError, JetStreamError, TimeoutError, OSError)

LOOP_FAULTS = Counter("aiorch_background_faults_total", "Failed steps of background loops.", ["loop", "kind"])
CONSUMED = Counter(
    "aiorch_consumer_messages_total", "Messages of durable consumers, by outcome.", ["consumer", "outcome"]
)

Step = Callable[[], Awaitable[float | None]]
Pause = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class Backoff:
    """Pauses after consecutive faults: `first`, doubled each time, at most `longest`."""

    first: float = 1.0
    longest: float = 10.0

    def after(self, faults: int) -> float:
        """The pause after `faults` consecutive faults (1 or more)."""
        return float(min(self.first * 2.0 ** max(0, faults - 1), self.longest))


async def run_forever(
    name: str,
    step: Step,
    interval: float = 0.0,
    backoff: Backoff = Backoff(),
    pause: Pause = asyncio.sleep,
    on_fault: Callable[[BaseException], None] | None = None,
) -> None:
    """Run `step` until cancelled, pausing `interval` (or what the step returns) between runs.

    A failing step is retried after `backoff`; the first fault of a series is logged (a stack trace only
    for faults outside TRANSIENT), and recovery is logged once.
    """
    faults = 0
    while True:
        try:
            wanted = await step()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            faults += 1
            transient = isinstance(exc, TRANSIENT)
            LOOP_FAULTS.labels(name, "transient" if transient else "error").inc()
            if on_fault is not None:
                on_fault(exc)
            if faults == 1:
                if transient:
                    log.warning("background loop interrupted; will retry", loop=name, error=str(exc))
                else:
                    log.exception("background loop failed; will retry", loop=name)
            await pause(backoff.after(faults))
            continue
        if faults:
            log.info("background loop recovered", loop=name, faults=faults)
            faults = 0
        delay = interval if wanted is None else wanted
        if delay > 0:
            await pause(delay)


T = TypeVar("T")


@dataclass(frozen=True)
class Durable:
    """A durable pull consumer of one stream, shared by every replica of a service."""

    stream: str
    name: str
    subject: str
    ack_wait: float = 30.0
    max_ack_pending: int = 1000
    batch: int = 64


class DurableConsumer(Generic[T]):
    """Fetches, decodes and handles a durable's messages in order; acked only once handled.

    `decode` raises DecodeError or ValueError for a message no retry can help: it is terminated.
    `handle` raising anything else naks the message and the rest of its batch (they come back together,
    in order, a second later) and the loop backs off.
    """

    def __init__(
        self,
        js: JetStreamContext,
        durable: Durable,
        decode: Callable[[bytes], T],
        handle: Callable[[T], Awaitable[None]],
    ) -> None:
        self._js = js
        self._durable = durable
        self._decode = decode
        self._handle = handle
        self._subscription: JetStreamContext.PullSubscription | None = None

    async def _subscribe(self) -> JetStreamContext.PullSubscription:
        spec = self._durable
        return await self._js.pull_subscribe(
            spec.subject,
            durable=spec.name,
            stream=spec.stream,
            config=ConsumerConfig(
                durable_name=spec.name,
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=spec.ack_wait,
                max_ack_pending=spec.max_ack_pending,
            ),
        )

    async def step(self) -> float:
        """One fetch and its messages; returns 0 (fetch again at once: the fetch itself waits)."""
        if self._subscription is None:
            self._subscription = await self._subscribe()
        try:
            messages = await self._subscription.fetch(batch=self._durable.batch, timeout=1)
        except (NatsTimeout, TimeoutError):
            # nats-py's fetch raises either its own TimeoutError or asyncio's when nothing arrives.
            return 0.0
        name = self._durable.name
        for index, message in enumerate(messages):
            try:
                item = self._decode(message.data)
            except (DecodeError, ValueError) as exc:
                log.warning("dropping a malformed message", consumer=name, subject=message.subject, error=str(exc))
                CONSUMED.labels(name, "terminated").inc()
                await message.term()
                continue
            try:
                await self._handle(item)
            except Exception:
                for pending in messages[index:]:
                    await pending.nak(delay=1)
                CONSUMED.labels(name, "retried").inc(len(messages) - index)
                raise
            await message.ack()
            CONSUMED.labels(name, "handled").inc()
        return 0.0

    async def run(self) -> None:
        """Until cancelled (the pull subscription outlives NATS reconnects, so it is made once)."""
        await run_forever(f"consumer {self._durable.name}", self.step)
