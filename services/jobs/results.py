"""Job results: read, list, download; recorded or changed by hand only by admins."""

from __future__ import annotations

import asyncio
import mimetypes
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from sqlalchemy import Select, select

from services.common.blobs import BlobMissing, BlobStore
from services.common.db import Database, utcnow
from services.common.errors import AlreadyExists, InvalidArgument, NotFound, PermissionDenied
from services.common.identity import Caller
from services.common.outbox import enqueue
from services.common.pagination import next_page_token, read_page
from services.jobs.access import JobAccess, sees_everything
from services.jobs.book import job_log_lines, parse_uuid
from services.jobs.lifecycle import JobState
from services.jobs.models import OUTBOX, Job, Result
from services.jobs.projects_client import Access
from services.jobs.transitions import finish, touch
from services.jobs.views import JobView, ResultView
from services.jobs.watch import Broadcast
from services.jobs.worker_messages import cancel_message


@dataclass(frozen=True)
class ResultPage:
    """One page of results."""

    results: list[ResultView]
    next_page_token: str


@dataclass(frozen=True)
class Download:
    """A file to stream: its name, media type and content."""

    filename: str
    content_type: str
    chunks: Iterator[bytes]


class ResultBook:
    """Results under the permissions of their job's project."""

    def __init__(
        self,
        db: Database,
        access: JobAccess,
        blobs: BlobStore,
        broadcast: Broadcast,
        wake_relay: Callable[[], None],
    ) -> None:
        self._wake = wake_relay
        self._db = db
        self._access = access
        self._blobs = blobs
        self._broadcast = broadcast

    def _load(self, result_id: str) -> tuple[ResultView, JobView] | None:
        key = parse_uuid(result_id, "result")
        with self._db.transaction() as session:
            row = session.get(Result, key)
            if row is None:
                return None
            job = session.get_one(Job, row.job_id)
            return ResultView.of(row, job.project_id, job_log_lines(session, job.id)), JobView.of(job, row.id)

    async def _require(self, caller: Caller, result_id: str, need: Access) -> tuple[ResultView, JobView]:
        found = await asyncio.to_thread(self._load, result_id)
        if found is None:
            raise NotFound(f"result {result_id!r} not found")
        await self._access.require(caller, found[0].project_id, need, f"result {result_id!r}")
        return found

    async def get(self, caller: Caller, result_id: str) -> ResultView:
        """A result the caller may see."""
        return (await self._require(caller, result_id, Access.READ))[0]

    async def job_details(self, caller: Caller, result_id: str) -> JobView:
        """The job behind a result."""
        return (await self._require(caller, result_id, Access.READ))[1]

    async def list_results(self, caller: Caller, page_size: int, page_token: str, job_id: str) -> ResultPage:
        """Results of jobs in projects the caller may see, newest first."""
        fingerprint = {"job": job_id, "u": str(caller.user_id)}
        page = read_page(page_size, page_token, fingerprint)
        statement: Select[Result] = select(Result).join(Job, Job.id == Result.job_id)
        if job_id:
            try:
                statement = statement.where(Result.job_id == uuid.UUID(job_id))
            except ValueError:
                return ResultPage([], "")
        visible = await self._access.visible_projects(caller)
        if visible is not None:
            statement = statement.where(Job.project_id.in_(visible))
        ordered = statement.order_by(Result.created_at.desc(), Result.id)

        def run() -> ResultPage:
            with self._db.transaction() as session:
                rows = list(session.scalars(ordered.offset(page.offset).limit(page.size + 1)))
                views = []
                for row in rows[: page.size]:
                    job = session.get_one(Job, row.job_id)
                    views.append(ResultView.of(row, job.project_id, job_log_lines(session, job.id)))
            return ResultPage(views, next_page_token(page, len(views), len(rows) > page.size, fingerprint))

        return await asyncio.to_thread(run)

    async def create(self, caller: Caller, job_id: str, result_url: str, meta: dict[str, Any]) -> ResultView:
        """Record a result by hand (admins, for workers outside the cluster); the job becomes COMPLETED."""
        if not sees_everything(caller):
            raise PermissionDenied("only admins and service accounts record results by hand")
        key = parse_uuid(job_id, "job")

        def run() -> tuple[ResultView, JobView]:
            with self._db.transaction() as session:
                job = session.get(Job, key, with_for_update=True)
                if job is None:
                    raise NotFound(f"job {job_id!r} not found")
                if session.scalar(select(Result.id).where(Result.job_id == key)) is not None:
                    raise AlreadyExists("the job already has a result")
                if JobState(job.status) in (JobState.FAILED, JobState.CANCELLED):
                    raise InvalidArgument(f"the job is {job.status}; retry it instead")
                now = utcnow()
                row = Result(job_id=key, attempt=job.attempt, output_keys=[], meta=meta, finished_at=now)
                row.result_url = result_url
                session.add(row)
                if not JobState(job.status).final:
                    # A worker may still be on it: call it off, the result is recorded now.
                    enqueue(session, OUTBOX, cancel_message(job))
                    finish(job, JobState.COMPLETED, now=now)
                else:
                    touch(job, now)
                session.flush()
                return ResultView.of(row, job.project_id, job_log_lines(session, key)), JobView.of(job, row.id)

        result, job = await asyncio.to_thread(run)
        self._wake()
        await self._broadcast(job, [])
        return result

    async def update(
        self, caller: Caller, result_id: str, result_url: str | None, meta: dict[str, Any] | None
    ) -> ResultView:
        """Change a result's url or meta (admins)."""
        if not sees_everything(caller):
            raise PermissionDenied("only admins and service accounts change results")
        view, _ = await self._require(caller, result_id, Access.READ)

        def run() -> ResultView:
            with self._db.transaction() as session:
                row = session.get_one(Result, view.id, with_for_update=True)
                if result_url is not None:
                    row.result_url = result_url
                if meta is not None:
                    row.meta = meta
                session.flush()
                return ResultView.of(row, view.project_id, view.logs)

        return await asyncio.to_thread(run)

    async def delete(self, caller: Caller, result_id: str) -> None:
        """Delete a result and its files (anyone who may write to the project)."""
        view, _ = await self._require(caller, result_id, Access.WRITE)

        def run() -> None:
            with self._db.transaction() as session:
                session.delete(session.get_one(Result, view.id))
            # Only the job's own outputs: a key elsewhere (stored before the intake checked them) stays put.
            own = f"results/{view.job_id}/"
            for key in view.output_keys:
                if key.startswith(own):
                    self._blobs.delete_prefix(key)

        await asyncio.to_thread(run)

    async def download(self, caller: Caller, result_id: str, filename: str) -> Download:
        """One of a result's files (default the main one) as chunks."""
        view, _ = await self._require(caller, result_id, Access.READ)
        if not view.output_keys:
            raise NotFound("this result has no stored file")
        names = view.files
        wanted = filename or names[0]
        if wanted not in names:
            raise NotFound(f"the result has no file {wanted!r}; it has {', '.join(names)}")
        key = view.output_keys[names.index(wanted)]
        try:
            await asyncio.to_thread(self._blobs.size, key)
        except BlobMissing:
            raise NotFound(f"the file {wanted!r} is gone from the store") from None
        content_type = mimetypes.guess_type(PurePosixPath(wanted).name)[0] or "application/octet-stream"
        return Download(wanted, content_type, self._blobs.read(key))


async def iterate_in_thread(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """Pull a blocking iterator from a worker thread, one chunk at a time."""
    done = object()
    while True:
        chunk = await asyncio.to_thread(next, chunks, done)
        if chunk is done:
            return
        assert isinstance(chunk, bytes)
        yield chunk
