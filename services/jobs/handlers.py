"""gRPC servicers of the jobs service: read the request, call one domain function, map the result."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from aiorch.jobs.v1 import (
    engines_pb2,
    engines_pb2_grpc,
    files_pb2,
    files_pb2_grpc,
    jobs_pb2,
    jobs_pb2_grpc,
    results_pb2,
    results_pb2_grpc,
    types_pb2,
)
from google.api import httpbody_pb2
from google.protobuf import json_format

from services.common import engine_catalog
from services.common.errors import InvalidArgument
from services.common.interceptors import current_caller
from services.common.job_params import JobParams
from services.common.job_params_proto import from_proto
from services.common.streams import TimedStreamWriter
from services.common.timestamps import from_timestamp, to_timestamp
from services.jobs.book import JobBook, JobChanges, JobQuery, NewJob
from services.jobs.engine_offers import CatalogEntry, EngineOffers
from services.jobs.files import FileBook, UploadHeader
from services.jobs.job_metrics import WATCH_STREAMS
from services.jobs.results import ResultBook, iterate_in_thread
from services.jobs.views import JobView
from services.jobs.watching import JobWatch
from services.jobs.wire import file_message, job_message, result_message, update_message

Context = Any


def _type_name(value: int) -> str:
    return _enum_name(types_pb2.JobType, value, "job type")


def _state_name(value: int) -> str:
    return _enum_name(types_pb2.JobState, value, "job state")


def _enum_name(enum: Any, value: int, what: str) -> str:
    """The name of an enum value, "" for unspecified (0); proto3 enums are open, so a client may send any number."""
    if value == 0:
        return ""
    try:
        return str(enum.Name(value))
    except ValueError:
        raise InvalidArgument(f"{what} {value} is not one of {', '.join(enum.keys()[1:])}") from None


def new_job(request: jobs_pb2.CreateJobRequest) -> NewJob:
    """The NewJob a CreateJobRequest asks for (gRPC, transcoded REST and the HTTP edge's forms alike)."""
    new = NewJob(
        project_id=request.project_id,
        type=_type_name(request.type),
        params=from_proto(request.params),
        name=request.name,
        description=request.description,
        input_file_id=request.input_file_id,
        input_url=request.input_url,
        client_request_id=request.client_request_id,
    )
    if not new.type:
        raise InvalidArgument("type is required, e.g. TTS")
    return new


def _changed_params(message: types_pb2.JobParams) -> JobParams:
    params = from_proto(message)
    if params is None:
        raise InvalidArgument("params must hold the parameters of the job's type")
    return params


def _optional(message: Any, field: str) -> Any:
    return getattr(message, field) if message.HasField(field) else None


class JobServicer(jobs_pb2_grpc.JobServiceServicer):
    """Jobs, progress and watch streams."""

    def __init__(self, book: JobBook, watch: JobWatch, write_timeout: float) -> None:
        self._book = book
        self._watch = watch
        self._write_timeout = write_timeout

    async def CreateJob(self, request: jobs_pb2.CreateJobRequest, context: Context) -> jobs_pb2.Job:
        return job_message(await self._book.create(current_caller(), new_job(request)))

    async def GetJob(self, request: jobs_pb2.GetJobRequest, context: Context) -> jobs_pb2.Job:
        return job_message(await self._book.get(current_caller(), request.id))

    async def ListJobs(self, request: jobs_pb2.ListJobsRequest, context: Context) -> jobs_pb2.ListJobsResponse:
        query = JobQuery(
            page_size=request.page_size,
            page_token=request.page_token,
            project_id=request.project_id,
            type=_type_name(request.type),
            status=_state_name(request.status),
            created_after=from_timestamp(request.created_after, "created_after")
            if request.HasField("created_after")
            else None,
            created_before=from_timestamp(request.created_before, "created_before")
            if request.HasField("created_before")
            else None,
            search=request.search,
            ordering=request.ordering,
        )
        page = await self._book.list_jobs(current_caller(), query)
        return jobs_pb2.ListJobsResponse(
            jobs=[job_message(j) for j in page.jobs],
            next_page_token=page.next_page_token,
            total_size=page.total_size,
        )

    async def UpdateJob(self, request: jobs_pb2.UpdateJobRequest, context: Context) -> jobs_pb2.Job:
        changes = JobChanges(
            name=_optional(request, "name"),
            description=_optional(request, "description"),
            params=_changed_params(request.params) if request.HasField("params") else None,
        )
        return job_message(await self._book.update(current_caller(), request.id, changes))

    async def DeleteJob(self, request: jobs_pb2.DeleteJobRequest, context: Context) -> jobs_pb2.DeleteJobResponse:
        await self._book.delete(current_caller(), request.id)
        return jobs_pb2.DeleteJobResponse()

    async def CancelJob(self, request: jobs_pb2.CancelJobRequest, context: Context) -> jobs_pb2.Job:
        return job_message(await self._book.cancel(current_caller(), request.id))

    async def RetryJob(self, request: jobs_pb2.RetryJobRequest, context: Context) -> jobs_pb2.Job:
        return job_message(await self._book.retry(current_caller(), request.id))

    async def UpdateProgress(self, request: jobs_pb2.UpdateProgressRequest, context: Context) -> jobs_pb2.Job:
        view = await self._book.update_progress(current_caller(), request.id, request.progress, request.message)
        return job_message(view)

    async def GetResultForJob(
        self, request: jobs_pb2.GetResultForJobRequest, context: Context
    ) -> results_pb2.JobResult:
        return result_message(await self._book.result_of(current_caller(), request.id))

    # The watch streams write with context.write (each write has a time limit, see TimedStreamWriter); grpc.aio
    # takes such a coroutine for a server stream, the generated stubs know only iterators.
    async def WatchJob(self, request: jobs_pb2.WatchJobRequest, context: Context) -> None:  # type: ignore[override]
        stream = TimedStreamWriter(context, self._write_timeout)
        WATCH_STREAMS.labels("job").inc()
        try:
            async with contextlib.aclosing(self._watch.job(current_caller(), request.id)) as changes:
                async for change in changes:
                    await stream.write(update_message(change))
        finally:
            WATCH_STREAMS.labels("job").dec()

    async def WatchJobs(self, request: jobs_pb2.WatchJobsRequest, context: Context) -> None:  # type: ignore[override]
        caller = current_caller()
        # Before the headers: a project the caller may not read answers 404, not 200 and an error in the body.
        await self._watch.check_jobs(caller, request.project_id)
        stream = TimedStreamWriter(context, self._write_timeout)
        WATCH_STREAMS.labels("jobs").inc()
        try:
            # Headers now: an SSE client through the gateway sees the stream open before the first change.
            await context.send_initial_metadata(())
            async with contextlib.aclosing(self._watch.jobs(caller, request.project_id)) as changes:
                async for change in changes:
                    await stream.write(update_message(change))
        finally:
            WATCH_STREAMS.labels("jobs").dec()


class FileServicer(files_pb2_grpc.FileServiceServicer):
    """Input uploads."""

    def __init__(self, files: FileBook) -> None:
        self._files = files

    async def UploadFile(
        self, request_iterator: AsyncIterator[files_pb2.UploadFileRequest], context: Context
    ) -> files_pb2.File:
        messages = aiter(request_iterator)
        try:
            first = await anext(messages)
        except StopAsyncIteration:
            raise InvalidArgument("send a header message, then the content in chunks") from None
        if first.WhichOneof("part") != "header":
            raise InvalidArgument("the first message must be the header (filename, content_type)")

        async def chunks() -> AsyncIterator[bytes]:
            async for message in messages:
                if message.WhichOneof("part") != "chunk":
                    raise InvalidArgument("only the first message may be a header")
                yield message.chunk

        header = UploadHeader(first.header.filename, first.header.content_type)
        return file_message(await self._files.upload(current_caller(), header, chunks()))

    async def UploadRawFile(
        self, request_iterator: AsyncIterator[files_pb2.UploadRawFileRequest], context: Context
    ) -> files_pb2.File:
        messages = aiter(request_iterator)
        try:
            first = await anext(messages)
        except StopAsyncIteration:
            raise InvalidArgument("the request body is empty") from None

        async def chunks() -> AsyncIterator[bytes]:
            yield first.body.data
            async for message in messages:
                yield message.body.data

        header = UploadHeader(first.filename, first.body.content_type)
        return file_message(await self._files.upload(current_caller(), header, chunks()))

    async def GetFile(self, request: files_pb2.GetFileRequest, context: Context) -> files_pb2.File:
        return file_message(await self._files.get(current_caller(), request.id))

    async def DeleteFile(self, request: files_pb2.DeleteFileRequest, context: Context) -> files_pb2.DeleteFileResponse:
        await self._files.delete(current_caller(), request.id)
        return files_pb2.DeleteFileResponse()


def _job_details(view: JobView) -> results_pb2.JobDetails:
    return results_pb2.JobDetails(
        id=str(view.id),
        project_id=str(view.project_id),
        name=view.name,
        type=view.type,
        status=view.status.value,
        progress=view.progress,
        created_at=to_timestamp(view.created_at),
        finished_at=to_timestamp(view.finished_at),
    )


class JobResultServicer(results_pb2_grpc.JobResultServiceServicer):
    """Results and downloads."""

    def __init__(self, results: ResultBook) -> None:
        self._results = results

    async def CreateJobResult(
        self, request: results_pb2.CreateJobResultRequest, context: Context
    ) -> results_pb2.JobResult:
        meta = json_format.MessageToDict(request.meta)
        return result_message(await self._results.create(current_caller(), request.job_id, request.result_url, meta))

    async def GetJobResult(self, request: results_pb2.GetJobResultRequest, context: Context) -> results_pb2.JobResult:
        return result_message(await self._results.get(current_caller(), request.id))

    async def ListJobResults(
        self, request: results_pb2.ListJobResultsRequest, context: Context
    ) -> results_pb2.ListJobResultsResponse:
        page = await self._results.list_results(current_caller(), request.page_size, request.page_token, request.job_id)
        return results_pb2.ListJobResultsResponse(
            job_results=[result_message(r) for r in page.results], next_page_token=page.next_page_token
        )

    async def UpdateJobResult(
        self, request: results_pb2.UpdateJobResultRequest, context: Context
    ) -> results_pb2.JobResult:
        meta = json_format.MessageToDict(request.meta) if request.HasField("meta") else None
        view = await self._results.update(current_caller(), request.id, _optional(request, "result_url"), meta)
        return result_message(view)

    async def DeleteJobResult(
        self, request: results_pb2.DeleteJobResultRequest, context: Context
    ) -> results_pb2.DeleteJobResultResponse:
        await self._results.delete(current_caller(), request.id)
        return results_pb2.DeleteJobResultResponse()

    async def GetJobDetails(
        self, request: results_pb2.GetJobDetailsRequest, context: Context
    ) -> results_pb2.JobDetails:
        return _job_details(await self._results.job_details(current_caller(), request.id))

    async def DownloadResult(
        self, request: results_pb2.DownloadResultRequest, context: Context
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        download = await self._results.download(current_caller(), request.id, request.file)
        first = True
        async for chunk in iterate_in_thread(download.chunks):
            yield httpbody_pb2.HttpBody(content_type=download.content_type if first else "", data=chunk)
            first = False
        if first:
            yield httpbody_pb2.HttpBody(content_type=download.content_type, data=b"")


class EngineServicer(engines_pb2_grpc.EngineServiceServicer):
    """The engine catalog."""

    def __init__(self, offers: EngineOffers) -> None:
        self._offers = offers

    async def ListEngines(
        self, request: engines_pb2.ListEnginesRequest, context: Context
    ) -> engines_pb2.ListEnginesResponse:
        current_caller()  # any authenticated caller may read it
        return engines_pb2.ListEnginesResponse(engines=[_engine_entry(e) for e in self._offers.catalog()])


def _engine_entry(entry: CatalogEntry) -> engines_pb2.EngineEntry:
    voices = [engine_catalog.VOICES[name] for name in sorted(entry.voices) if name in engine_catalog.VOICES]
    return engines_pb2.EngineEntry(
        type=types_pb2.JobType.Value(entry.job_type),
        engines=sorted(entry.engines),
        workers=entry.workers,
        models=sorted(entry.models),
        languages=sorted(entry.languages),
        voices=[
            engines_pb2.EngineVoice(name=v.name, engine=v.engine, languages=list(v.languages), sex=v.sex)
            for v in voices
        ],
        pairs=[engines_pb2.TranslationPair(source=s, target=t, via=v) for s, t, v in sorted(entry.pairs)],
    )
