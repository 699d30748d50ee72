"""One synchronous call's job, in-process: upload its input, create it, wait for it to end, read its result.

The same domain objects as the gRPC handlers (JobBook, FileBook, ResultBook, JobWatch), so every call is a
real job: stored, dispatched, visible in the console and the metrics, cancellable. Waiting holds no thread:
it follows the job's changes on the watch hub like any stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from starlette.datastructures import UploadFile

from services.common.errors import FailedPrecondition, InvalidArgument
from services.common.identity import Caller
from services.jobs.book import JobBook, NewJob
from services.jobs.files import FileBook, UploadHeader
from services.jobs.projects_client import ProjectsClient
from services.jobs.results import ResultBook
from services.jobs.views import FileView, JobView, ResultView
from services.jobs.watching import JobWatch

UPLOAD_CHUNK = 256 * 1024


@dataclass(frozen=True)
class Finished:
    """A job as it ended (or as it stood when the wait ran out), and its result when it completed."""

    job: JobView
    result: ResultView | None


class JobRuns:
    """Upload, create, wait and read, each under the caller's own access."""

    def __init__(
        self, book: JobBook, files: FileBook, results: ResultBook, watch: JobWatch, projects: ProjectsClient
    ) -> None:
        self._book = book
        self._files = files
        self._results = results
        self._watch = watch
        self._projects = projects

    async def upload(self, caller: Caller, upload: UploadFile, default_name: str) -> FileView:
        """Store a form's file as an input (size limit and media sniffing as for every upload)."""
        header = UploadHeader(filename=upload.filename or default_name, content_type=upload.content_type or "")
        return await self._files.upload(caller, header, _chunks(upload))

    async def create(self, caller: Caller, new: NewJob) -> JobView:
        """Create the job."""
        return await self._book.create(caller, new)

    async def project_for(self, caller: Caller, asked: str) -> str:
        """The project a call's job goes into: the one asked for, the API key's, or the caller's default."""
        if asked:
            return asked
        if caller.project_scope is not None:
            return str(caller.project_scope)
        return str(await self._projects.default_project(caller))

    async def wait(self, caller: Caller, job_id: uuid.UUID, seconds: float) -> Finished:
        """The job once final, or as it stands after `seconds`."""
        latest: JobView | None = None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                async for change in self._watch.job(caller, str(job_id)):
                    latest = change.view
        if latest is None:
            latest = await self._book.get(caller, str(job_id))
        result = await self._book.result_of(caller, str(job_id)) if latest.status.name == "COMPLETED" else None
        return Finished(latest, result)

    async def run(self, caller: Caller, new: NewJob, seconds: float) -> Finished:
        """Create the job and wait for it; a job still running when the wait runs out is cancelled."""
        job = await self.create(caller, new)
        finished = await self.wait(caller, job.id, seconds)
        if not finished.job.status.final:
            with contextlib.suppress(FailedPrecondition):
                await self._book.cancel(caller, str(job.id))
            raise FailedPrecondition(f"job {job.id} did not finish within {seconds:g} s and was cancelled")
        return finished

    async def read(self, caller: Caller, result: ResultView, filename: str = "") -> bytes:
        """One of a result's files, whole (synchronous answers are small: a transcript, a clip of speech)."""
        download = await self._results.download(caller, str(result.id), filename)
        return await asyncio.to_thread(b"".join, download.chunks)


def final_or_error(finished: Finished) -> ResultView:
    """The result of a completed job; the job's own error for one that failed or was cancelled."""
    if finished.result is None:
        reason = finished.job.error or finished.job.status.name.lower()
        raise InvalidArgument(f"job {finished.job.id} {finished.job.status.name.lower()}: {reason}")
    return finished.result


async def _chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(UPLOAD_CHUNK):
        yield chunk
