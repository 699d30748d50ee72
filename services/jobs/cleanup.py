"""When a project is deleted, its jobs are cancelled and removed with their files."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

from aiorch.projects.v1 import events_pb2 as project_events
from nats.js import JetStreamContext
from sqlalchemy import select

from services.common.db import Database
from services.common.logging import get_logger
from services.common.loops import Durable, DurableConsumer
from services.common.messaging import PROJECT_DELETED_SUBJECT, PROJECTS_CONSUMER, PROJECTS_STREAM
from services.jobs.book import JobBook
from services.jobs.models import Job
from services.jobs.watch import Broadcast

log = get_logger(__name__)

PROJECTS_DURABLE = Durable(PROJECTS_STREAM, PROJECTS_CONSUMER, PROJECT_DELETED_SUBJECT, ack_wait=60, batch=16)


class ProjectCleanup:
    """Consumes ProjectDeleted events (one durable shared by every replica)."""

    def __init__(
        self,
        db: Database,
        js: JetStreamContext,
        book: JobBook,
        broadcast: Broadcast,
        wake: Callable[[], None],
    ) -> None:
        self._db = db
        self._js = js
        self._book = book
        self._broadcast = broadcast
        self._wake = wake

    def _job_ids(self, project_id: uuid.UUID) -> list[uuid.UUID]:
        with self._db.transaction() as session:
            return list(session.scalars(select(Job.id).where(Job.project_id == project_id)))

    async def remove_project(self, project_id: uuid.UUID) -> int:
        """Cancel and delete every job of a project; returns how many were removed."""
        ids = await asyncio.to_thread(self._job_ids, project_id)
        for job_id in ids:
            ending = await asyncio.to_thread(self._book.remove, job_id)
            if ending is not None:
                await self._broadcast(ending, [])
        self._wake()
        return len(ids)

    async def _handle(self, project_id: uuid.UUID) -> None:
        removed = await self.remove_project(project_id)
        log.info("project deleted; jobs removed", project_id=str(project_id), jobs=removed)

    async def run(self) -> None:
        """Forever: apply project deletions; an event is acked only after its jobs are gone."""
        await DurableConsumer(self._js, PROJECTS_DURABLE, _deleted_project, self._handle).run()


def _deleted_project(data: bytes) -> uuid.UUID:
    return uuid.UUID(project_events.ProjectDeleted.FromString(data).project_id)
