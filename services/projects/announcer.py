"""Tells every jobs replica, over core NATS, that access to a project changed, so open streams decide again."""

from __future__ import annotations

import asyncio
import uuid

from nats.aio.client import Client as NatsClient
from nats.errors import Error as NatsError

from services.common.logging import get_logger
from services.common.messaging import access_changes_subject

log = get_logger(__name__)


class AccessAnnouncer:
    """Publishes `projects.access.<id>` after a commit; callable from the catalog's worker threads."""

    def __init__(self, nc: NatsClient, loop: asyncio.AbstractEventLoop) -> None:
        self._nc = nc
        self._loop = loop
        self._pending: set[asyncio.Task[None]] = set()  # the loop keeps only weak references to tasks

    def __call__(self, project_id: uuid.UUID) -> None:
        """Announce from any thread; the publish itself runs on the event loop."""
        self._loop.call_soon_threadsafe(self._start, project_id)

    def _start(self, project_id: uuid.UUID) -> None:
        task = self._loop.create_task(self._publish(project_id))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _publish(self, project_id: uuid.UUID) -> None:
        try:
            await self._nc.publish(access_changes_subject(str(project_id)), b"")
        except (NatsError, OSError) as exc:
            # At most once by design: the streams' periodic re-check covers a lost announcement.
            log.warning("could not announce an access change", project_id=str(project_id), error=str(exc))
