"""Live job updates: stored changes are broadcast on NATS and fanned out to this replica's watchers.

The broadcast happens after the database commit, so no watcher sees a state that was not
stored; every replica hears every change, so a watcher may be connected to any of them. Besides
job changes, a watcher's queue carries what may end or narrow its stream: the end of its session
(the token revoked or expired) and announcements that access to a project changed. They travel in
the same queue as the changes, so a stream handles them in order and never sends a change after
the moment its caller lost the right to read it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import Error as NatsError

from services.common.errors import ResourceExhausted, Unauthenticated, Unavailable
from services.common.identity import Caller
from services.common.logging import get_logger
from services.common.messaging import ACCESS_CHANGES_PREFIX, CHANGES_PREFIX, changes_subject
from services.jobs.views import JobView

log = get_logger(__name__)

Broadcast = Callable[[JobView, list[str]], Awaitable[None]]


@dataclass(frozen=True, eq=False)
class JobChange:
    """One stored change of a job and the log lines it added (compared and hashed by identity)."""

    view: JobView
    log_lines: tuple[str, ...] = ()


@dataclass(frozen=True)
class AccessChanged:
    """Who may read the project's jobs changed: a stream decides its access to it again."""

    project_id: str


@dataclass(frozen=True)
class SessionEnded:
    """The caller's token was revoked or expired: the stream ends UNAUTHENTICATED."""

    reason: str


Item = JobChange | AccessChanged | SessionEnded | None


@dataclass(eq=False)
class Watcher:
    """One open stream's buffer. `job_id` None means every job (filtered by the stream itself)."""

    job_id: str | None
    caller: Caller
    queue: asyncio.Queue[Item]
    overflowed: bool = field(default=False)
    closing: bool = field(default=False)
    expiry: asyncio.TimerHandle | None = field(default=None)

    async def items(self) -> AsyncIterator[JobChange | AccessChanged]:
        """Buffered items in arrival order; raises when the session ended, the client fell behind or we stop."""
        while True:
            if self.closing:
                raise Unavailable("the server is shutting down; reconnect to resume")
            if self.overflowed:
                raise ResourceExhausted("the watcher fell too far behind; reconnect to resume", retry_after=1)
            item = await self.queue.get()
            if isinstance(item, SessionEnded):
                raise Unauthenticated(item.reason)
            if item is not None:
                yield item


class WatchHub:
    """This replica's watchers, fed by every replica's broadcasts and by revocations."""

    def __init__(self, queue_size: int, decode: Callable[[bytes], JobChange]) -> None:
        self._queue_size = queue_size
        self._decode = decode
        self._watchers: set[Watcher] = set()

    def open(self, job_id: str | None, caller: Caller) -> Watcher:
        """Register a watcher before reading the snapshot, so no change falls between the two.

        The stream ends when the caller's token expires, as a unary call with it would then be refused.
        """
        watcher = Watcher(job_id, caller, asyncio.Queue(self._queue_size))
        self._watchers.add(watcher)
        if caller.expires_at:
            loop = asyncio.get_running_loop()
            # call_at takes the loop's monotonic clock: convert the wall-clock expiry once.
            when = loop.time() + max(0.0, caller.expires_at - time.time())
            watcher.expiry = loop.call_at(when, _signal, watcher, SessionEnded("token has expired"))
        return watcher

    def close(self, watcher: Watcher) -> None:
        """Forget a watcher."""
        self._watchers.discard(watcher)
        if watcher.expiry is not None:
            watcher.expiry.cancel()

    async def shutdown(self) -> None:
        """End every stream now (clients reconnect to another replica) instead of holding the drain."""
        for watcher in list(self._watchers):
            watcher.closing = True
            with contextlib.suppress(asyncio.QueueFull):
                watcher.queue.put_nowait(None)

    def deliver(self, change: JobChange) -> None:
        """Hand a change to every interested watcher; a full buffer marks its watcher overflowed."""
        job_id = str(change.view.id)
        for watcher in list(self._watchers):
            if watcher.job_id is not None and watcher.job_id != job_id:
                continue
            _put(watcher, change)

    def revoke_family(self, family_id: str) -> None:
        """End the streams of a revoked session (RevocationView.on_revoke)."""
        for watcher in list(self._watchers):
            if watcher.caller.family_id == family_id:
                _signal(watcher, SessionEnded("token has been revoked; log in again"))

    def access_changed(self, project_id: str) -> None:
        """Tell every stream that access to a project changed; each decides whether it cares."""
        for watcher in list(self._watchers):
            _put(watcher, AccessChanged(project_id))

    async def listen(self, nc: NatsClient) -> None:
        """Subscribe to every replica's broadcasts and to access announcements (runs until cancelled)."""

        async def on_change(message: Msg) -> None:
            try:
                self.deliver(self._decode(message.data))
            except Exception:
                log.exception("bad change broadcast", subject=message.subject)

        async def on_access(message: Msg) -> None:
            self.access_changed(message.subject.removeprefix(f"{ACCESS_CHANGES_PREFIX}."))

        changes = await nc.subscribe(f"{CHANGES_PREFIX}.*", cb=on_change)
        access = await nc.subscribe(f"{ACCESS_CHANGES_PREFIX}.*", cb=on_access)
        try:
            await asyncio.Event().wait()
        finally:
            await changes.unsubscribe()
            await access.unsubscribe()


def _put(watcher: Watcher, item: JobChange | AccessChanged) -> None:
    if watcher.overflowed:
        return
    try:
        watcher.queue.put_nowait(item)
    except asyncio.QueueFull:
        # Bounded memory: a client that does not read is ended instead of buffered forever. Its
        # stream ends anyway, so what it has not read is dropped now, not when its write times out.
        watcher.overflowed = True
        _empty(watcher.queue)
        watcher.queue.put_nowait(None)


def _signal(watcher: Watcher, ended: SessionEnded) -> None:
    # The end of a session outranks whatever is still buffered: nothing after it may be sent.
    _empty(watcher.queue)
    watcher.queue.put_nowait(ended)


def _empty(queue: asyncio.Queue[Item]) -> None:
    while not queue.empty():
        queue.get_nowait()


class ChangeBroadcaster:
    """Publishes a job's stored state to every replica (core NATS: at most once; watchers re-read on reconnect)."""

    def __init__(self, nc: NatsClient, encode: Callable[[JobChange], bytes]) -> None:
        self._nc = nc
        self._encode = encode

    async def __call__(self, view: JobView, log_lines: list[str]) -> None:
        payload = self._encode(JobChange(view, tuple(log_lines)))
        try:
            await self._nc.publish(changes_subject(str(view.id)), payload)
        except (NatsError, OSError) as exc:
            log.warning("could not broadcast a job change", job_id=str(view.id), error=str(exc))
