"""Live job updates: stored changes are broadcast on NATS and fanned out to this replica's watchers.

The broadcast happens after the database commit, so no watcher sees a state that was not
stored; every replica hears every change, so a watcher may be connected to any of them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from aiorch.jobs.v1 import jobs_pb2
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import Error as NatsError

from services.common.errors import ResourceExhausted, Unavailable
from services.common.logging import get_logger
from services.common.messaging import CHANGES_PREFIX, changes_subject
from services.jobs.convert import update_message
from services.jobs.views import JobView

log = get_logger(__name__)

Broadcast = Callable[[JobView, list[str]], Awaitable[None]]


@dataclass(eq=False)
class Watcher:
    """One open stream's buffer. `job_id` None means every job (filtered by the stream itself)."""

    job_id: str | None
    queue: asyncio.Queue[jobs_pb2.JobUpdate | None]
    overflowed: bool = field(default=False)
    closing: bool = field(default=False)

    async def updates(self) -> AsyncIterator[jobs_pb2.JobUpdate]:
        """Buffered updates in arrival order; ends the stream if the client fell behind or the server stops."""
        while True:
            if self.closing:
                raise Unavailable("the server is shutting down; reconnect to resume")
            if self.overflowed:
                raise ResourceExhausted("the watcher fell too far behind; reconnect to resume", retry_after=1)
            update = await self.queue.get()
            if update is not None:
                yield update


class WatchHub:
    """This replica's watchers, fed by every replica's broadcasts."""

    def __init__(self, queue_size: int) -> None:
        self._queue_size = queue_size
        self._watchers: set[Watcher] = set()

    def open(self, job_id: str | None) -> Watcher:
        """Register a watcher before reading the snapshot, so no change falls between the two."""
        watcher = Watcher(job_id, asyncio.Queue(self._queue_size))
        self._watchers.add(watcher)
        return watcher

    def close(self, watcher: Watcher) -> None:
        """Forget a watcher."""
        self._watchers.discard(watcher)

    async def shutdown(self) -> None:
        """End every stream now (clients reconnect to another replica) instead of holding the drain."""
        for watcher in list(self._watchers):
            watcher.closing = True
            with contextlib.suppress(asyncio.QueueFull):
                watcher.queue.put_nowait(None)

    def deliver(self, update: jobs_pb2.JobUpdate) -> None:
        """Hand an update to every interested watcher; a full buffer marks its watcher overflowed."""
        for watcher in list(self._watchers):
            if watcher.job_id is not None and watcher.job_id != update.job.id:
                continue
            if watcher.overflowed:
                continue
            try:
                watcher.queue.put_nowait(update)
            except asyncio.QueueFull:
                # Bounded memory: a client that does not read is ended instead of buffered forever. Its
                # stream ends anyway, so what it has not read is dropped now, not when its write times out.
                watcher.overflowed = True
                _empty(watcher.queue)
                watcher.queue.put_nowait(None)

    async def listen(self, nc: NatsClient) -> None:
        """Subscribe to every replica's broadcasts (runs until cancelled)."""

        async def on_change(message: Msg) -> None:
            try:
                self.deliver(jobs_pb2.JobUpdate.FromString(message.data))
            except Exception:
                log.exception("bad change broadcast", subject=message.subject)

        subscription = await nc.subscribe(f"{CHANGES_PREFIX}.*", cb=on_change)
        try:
            await asyncio.Event().wait()
        finally:
            await subscription.unsubscribe()


def _empty(queue: asyncio.Queue[jobs_pb2.JobUpdate | None]) -> None:
    while not queue.empty():
        queue.get_nowait()


class ChangeBroadcaster:
    """Publishes a job's stored state to every replica (core NATS: at most once; watchers re-read on reconnect)."""

    def __init__(self, nc: NatsClient) -> None:
        self._nc = nc

    async def __call__(self, view: JobView, log_lines: list[str]) -> None:
        try:
            await self._nc.publish(changes_subject(str(view.id)), update_message(view, log_lines).SerializeToString())
        except (NatsError, OSError) as exc:
            log.warning("could not broadcast a job change", job_id=str(view.id), error=str(exc))
