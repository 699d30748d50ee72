"""When a project is deleted, its jobs are cancelled and removed with their files."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

from aiorch.projects.v1 import events_pb2 as project_events
from google.protobuf.message import DecodeError
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig
from nats.js.errors import Error as JetStreamError
from sqlalchemy import select

from services.common.db import Database
from services.common.logging import get_logger
from services.common.messaging import PROJECT_DELETED_SUBJECT, PROJECTS_CONSUMER, PROJECTS_STREAM
from services.jobs.book import JobBook
from services.jobs.models import Job
from services.jobs.watch import Broadcast

log = get_logger(__name__)


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

    async def run(self) -> None:
        """Forever: apply project deletions; an event is acked only after its jobs are gone."""
        subscription = None
        while True:
            try:
                if subscription is None:
                    subscription = await self._js.pull_subscribe(
                        PROJECT_DELETED_SUBJECT,
                        durable=PROJECTS_CONSUMER,
                        stream=PROJECTS_STREAM,
                        config=ConsumerConfig(
                            durable_name=PROJECTS_CONSUMER, ack_policy=AckPolicy.EXPLICIT, ack_wait=60
                        ),
                    )
                try:
                    messages = await subscription.fetch(batch=16, timeout=1)
                except (NatsTimeout, TimeoutError):
                    # nats-py's fetch raises either its own TimeoutError or asyncio's when nothing arrives.
                    continue
                for message in messages:
                    try:
                        event = project_events.ProjectDeleted.FromString(message.data)
                        project_id = uuid.UUID(event.project_id)
                    except (DecodeError, ValueError):
                        await message.term()
                        continue
                    removed = await self.remove_project(project_id)
                    log.info("project deleted; jobs removed", project_id=str(project_id), jobs=removed)
                    await message.ack()
            except (NatsError, JetStreamError, OSError) as exc:
                log.warning("project cleanup interrupted; retrying", error=str(exc))
                await asyncio.sleep(1)
            except Exception:
                log.exception("project cleanup failed; retrying")
                await asyncio.sleep(1)
