"""A process's local copy of a JetStream KV bucket that the auth service writes and every service reads.

Services decide every call from such copies (revoked sessions, API keys) instead of asking the auth
service, so a check costs a dictionary lookup. A copy fails closed at start: a service serves no call
before it has read the whole bucket. Later, while NATS is unreachable, it keeps what it has read and
catches up on reconnect. Starting over after a quiet period costs one read of a small bucket and
recovers a watch that a NATS restart left silently dead.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools

from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KV_DEL, KV_PURGE

from services.common.loops import Backoff, run_forever


class KvMirror:
    """Follows one bucket; subclasses give `apply` (an entry put or removed) and may give `on_quiet`."""

    def __init__(self, bucket: str, resync_seconds: float = 30.0) -> None:
        self._bucket = bucket
        self._resync = resync_seconds
        self._loaded = asyncio.Event()
        self._js: JetStreamContext | None = None

    def apply(self, key: str, value: bytes | None) -> None:
        """One entry of the bucket: its value, or None when the key was deleted or purged."""
        raise NotImplementedError

    def on_quiet(self) -> None:
        """Called after each quiet period, before the bucket is read afresh."""

    async def wait_loaded(self, timeout: float) -> None:
        """Return once the whole bucket has been read; TimeoutError after `timeout` seconds."""
        await asyncio.wait_for(self._loaded.wait(), timeout)

    async def run(self, js: JetStreamContext) -> None:
        """Forever: read the bucket, then follow it; start over after a quiet period or a fault."""
        self._js = js
        await run_forever(f"{self._bucket} watch", functools.partial(self._follow, js), backoff=Backoff(1.0, 1.0))

    async def _follow(self, js: JetStreamContext) -> None:
        kv = await js.key_value(self._bucket)
        watcher = await kv.watchall()
        try:
            while True:
                try:
                    entry = await watcher.updates(timeout=self._resync)  # type: ignore[no-untyped-call]
                except NatsError:  # nats-py's TimeoutError: a quiet period; read the bucket afresh
                    self.on_quiet()
                    return
                if entry is None:  # the marker after the initial values
                    self._loaded.set()
                    continue
                removed = entry.operation in (KV_DEL, KV_PURGE)
                self.apply(entry.key, None if removed else (entry.value or b""))
        finally:
            with contextlib.suppress(Exception):  # the connection may already be gone
                await watcher.stop()  # type: ignore[no-untyped-call]

    async def read_through(self, key: str) -> None:
        """Read one key from the bucket now and apply it: for a key the watch may not have delivered yet."""
        if self._js is None:
            return
        kv = await self._js.key_value(self._bucket)
        try:
            entry = await kv.get(key)
        except KeyNotFoundError:  # also raised for a deleted or purged key
            self.apply(key, None)
            return
        self.apply(key, entry.value or b"")
