"""Jobs: create, read, list, change, cancel, retry and delete, under the project's permissions."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Select, Table, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.common.blobs import BlobStore
from services.common.counting import count_rows
from services.common.db import Database, like_pattern, utcnow
from services.common.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from services.common.identity import Caller
from services.common.job_params import JobParams
from services.common.job_params_proto import encode_params
from services.common.job_types import JobTypeSpec
from services.common.keyset import SortKey
from services.common.outbox import OutboxMessage, enqueue
from services.common.pagination import next_keyset_token, read_keyset_page
from services.jobs.access import JobAccess, sees_everything
from services.jobs.input_media import check_input_kind
from services.jobs.job_metrics import JOBS_CREATED
from services.jobs.job_rules import check_input_url, check_inputs, check_params, job_type
from services.jobs.lifecycle import JobState, may_cancel, may_edit_params, may_retry
from services.jobs.models import OUTBOX, File, Job, JobLog, Result
from services.jobs.projects_client import Access
from services.jobs.transitions import finish, new_attempt, new_grant, replace_attempt, touch
from services.jobs.views import JobView, ResultView
from services.jobs.watch import Broadcast
from services.jobs.worker_messages import cancel_message, dispatch_message

# ordering -> its keyset sort key; lists page by key, not offset (services/common/keyset.py).
ORDERING: dict[str, SortKey] = {
    "created_at": SortKey(Job.created_at, Job.id, descending=False),
    "-created_at": SortKey(Job.created_at, Job.id, descending=True),
    "name": SortKey(Job.name, Job.id, descending=False),
    "-name": SortKey(Job.name, Job.id, descending=True),
    "status": SortKey(Job.status, Job.id, descending=False),
    "-status": SortKey(Job.status, Job.id, descending=True),
}


@dataclass(frozen=True)
class NewJob:
    """What a client asks for."""

    project_id: str
    type: str
    params: JobParams | None
    name: str = ""
    description: str = ""
    input_file_id: str = ""
    input_url: str = ""
    client_request_id: str = ""


@dataclass(frozen=True)
class JobQuery:
    """Filters, search, ordering and page of a job list."""

    page_size: int = 0
    page_token: str = ""
    project_id: str = ""
    type: str = ""
    status: str = ""
    created_after: datetime | None = None
    created_before: datetime | None = None
    search: str = ""
    ordering: str = ""


@dataclass(frozen=True)
class JobPage:
    """One page of jobs."""

    jobs: list[JobView]
    next_page_token: str
    total_size: int


@dataclass(frozen=True)
class JobChanges:
    """Fields to change; None leaves a field as it is."""

    name: str | None = None
    description: str | None = None
    params: JobParams | None = None


def parse_uuid(value: str, what: str) -> uuid.UUID:
    """A UUID, or NOT_FOUND naming `what` (ids of other users' objects must not be distinguishable)."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound(f"{what} {value!r} not found") from None


JOBS_TABLE = cast(Table, Job.__table__)


class JobBook:
    """The jobs and their rules; every write that workers must hear of goes through the outbox."""

    def __init__(
        self,
        db: Database,
        access: JobAccess,
        blobs: BlobStore,
        wake_relay: Callable[[], None],
        broadcast: Broadcast,
        hand_off: Callable[[int, OutboxMessage], None],
    ) -> None:
        self._db = db
        self._access = access
        self._blobs = blobs
        self._wake = wake_relay
        self._broadcast = broadcast
        # Publishes a new job's dispatch right after its commit (OutboxRelay.hand_off).
        self._hand_off = hand_off

    async def _require(self, caller: Caller, job_id: str, need: Access) -> JobView:
        """The job, if the caller may `need` on its project; NOT_FOUND when they may not even see it."""
        key = parse_uuid(job_id, "job")
        view = await asyncio.to_thread(self._load_view, key)
        if view is None:
            raise NotFound(f"job {job_id!r} not found")
        await self._access.require(caller, view.project_id, need, f"job {job_id!r}")
        return view

    def _load_view(self, job_id: uuid.UUID) -> JobView | None:
        with self._db.transaction() as session:
            job = session.get(Job, job_id)
            return self._view(session, job) if job else None

    @staticmethod
    def _view(session: Session, job: Job) -> JobView:
        result_id = session.scalar(select(Result.id).where(Result.job_id == job.id))
        return JobView.of(job, result_id)

    async def _publish(self, view: JobView, log_lines: list[str] | None = None) -> None:
        self._wake()
        await self._broadcast(view, log_lines or [])

    async def create(self, caller: Caller, new: NewJob) -> JobView:
        """Accept a job: the row and its dispatch commit together; a repeated request id returns the first."""
        project_id = parse_uuid(new.project_id, "project")
        spec = job_type(new.type)
        access = await self._access.level(caller, project_id)
        if access < Access.READ:
            raise NotFound(f"project {new.project_id!r} not found")
        if access < Access.WRITE:
            raise PermissionDenied("you may not create jobs in this project")
        params = encode_params(check_params(spec, new.params))
        check_inputs(spec, new.input_file_id, new.input_url)
        input_url = check_input_url(new.input_url) if new.input_url else ""
        view, dispatch = await asyncio.to_thread(self._insert, caller, project_id, spec, new, params, input_url)
        if dispatch is not None:
            JOBS_CREATED.labels(spec.name).inc()
            # Dispatch now instead of after the relay's next select, which was a database round trip
            # or more on the way to the worker (docs/performance.md).
            self._hand_off(*dispatch)
            await self._broadcast(view, [])
        return view

    def _insert(
        self, caller: Caller, project_id: uuid.UUID, spec: JobTypeSpec, new: NewJob, params: bytes, input_url: str
    ) -> tuple[JobView, tuple[int, OutboxMessage] | None]:
        """The job and, when this call created it, its dispatch's outbox row (id, message)."""
        request_id = new.client_request_id or None
        try:
            with self._db.transaction() as session:
                if request_id:
                    existing = session.scalar(
                        select(Job).where(Job.owner_id == caller.user_id, Job.client_request_id == request_id)
                    )
                    if existing is not None:
                        if (existing.project_id, existing.type, existing.params) != (project_id, spec.name, params):
                            raise AlreadyExists(
                                f"client_request_id {request_id!r} was already used for a different request"
                            )
                        return self._view(session, existing), None
                input_file = None
                if new.input_file_id:
                    input_file = session.get(File, parse_uuid(new.input_file_id, "file"))
                    if input_file is None or (input_file.owner_id != caller.user_id and not caller.is_admin):
                        raise NotFound(f"file {new.input_file_id!r} not found")
                    check_input_kind(spec, input_file.content_type, input_file.filename)
                now = utcnow()
                job = Job(
                    id=uuid.uuid4(),
                    project_id=project_id,
                    owner_id=caller.user_id,
                    name=new.name.strip(),
                    description=new.description,
                    type=spec.name,
                    status=JobState.PENDING.value,
                    progress=0,
                    message="",
                    params=params,
                    input_file_id=input_file.id if input_file else None,
                    input_url=input_url,
                    client_request_id=request_id,
                    attempt=1,
                    attempts=0,
                    error="",
                    worker_id="",
                    cancel_requested=False,
                    last_delivery=0,
                    last_sequence=0,
                    dispatch_grant=new_grant(),
                    version=1,
                    created_at=now,
                    updated_at=now,
                )
                # One Core INSERT of the values set above (columns left unset get their defaults, as in a
                # flush); the object stays out of the session. The ORM's flush (unit of work) of this one
                # row held about 15 % of the service's samples per create.
                values = {c.key: job.__dict__[c.key] for c in JOBS_TABLE.columns if c.key in job.__dict__}
                session.execute(JOBS_TABLE.insert().values(values))
                message = dispatch_message(job, input_file)
                return JobView.of(job), (enqueue(session, OUTBOX, message), message)
        except IntegrityError:
            # Two creates with one request id raced; the other one won.
            with self._db.transaction() as session:
                existing = session.scalar(
                    select(Job).where(Job.owner_id == caller.user_id, Job.client_request_id == request_id)
                )
                if existing is None:
                    raise
                return self._view(session, existing), None

    async def get(self, caller: Caller, job_id: str) -> JobView:
        """A job the caller may see."""
        return await self._require(caller, job_id, Access.READ)

    async def list_jobs(self, caller: Caller, query: JobQuery) -> JobPage:
        """Jobs in projects the caller may see, filtered, searched, ordered and paged."""
        ordering = query.ordering or "-created_at"
        if ordering not in ORDERING:
            raise InvalidArgument(f"ordering must be one of {', '.join(ORDERING)}")
        fingerprint = {
            "p": query.project_id,
            "t": query.type,
            "s": query.status,
            "a": str(query.created_after),
            "b": str(query.created_before),
            "q": query.search,
            "o": ordering,
            "u": str(caller.user_id),
        }
        page = read_keyset_page(query.page_size, query.page_token, fingerprint)
        statement: Select[Job] = select(Job)
        project_id = parse_uuid(query.project_id, "project") if query.project_id else None
        if project_id is not None:
            statement = statement.where(Job.project_id == project_id)
        if project_id is not None:
            # One access check for the one project asked for, instead of listing every visible project. As for
            # the project itself: one the caller may not see answers NOT_FOUND, not an empty list.
            await self._access.require(caller, project_id, Access.READ, f"project {query.project_id!r}")
        else:
            visible = await self._access.visible_projects(caller)
            if visible is not None:
                statement = statement.where(Job.project_id.in_(visible))
        if query.type:
            statement = statement.where(Job.type == job_type(query.type).name)
        if query.status:
            statement = statement.where(Job.status == query.status)
        if query.created_after:
            statement = statement.where(Job.created_at >= query.created_after)
        if query.created_before:
            statement = statement.where(Job.created_at < query.created_before)
        if query.search:
            statement = statement.where(Job.name.ilike(like_pattern(query.search), escape="\\"))
        key = ORDERING[ordering]
        paged = key.order(statement if page.after is None else key.after(statement, page.after))

        def run() -> JobPage:
            with self._db.transaction() as session:
                total = count_rows(session, statement)
                rows = list(session.scalars(paged.limit(page.size + 1)))
                shown = within_page_budget(rows[: page.size])
                # One query for the page's result ids, not one per job.
                found = session.execute(
                    select(Result.job_id, Result.id).where(Result.job_id.in_([r.id for r in shown]))
                )
                results = dict(found.tuples().all())
                views = [JobView.of(r, results.get(r.id)) for r in shown]
            last = key.of(shown[-1]) if shown else None
            more = len(rows) > len(shown)
            return JobPage(views, next_keyset_token(last, more, fingerprint), total)

        return await asyncio.to_thread(run)

    async def update(self, caller: Caller, job_id: str, changes: JobChanges) -> JobView:
        """Rename or re-describe; new parameters only while PENDING (the old dispatch is called off)."""
        view = await self._require(caller, job_id, Access.WRITE)
        params = encode_params(check_params(job_type(view.type), changes.params)) if changes.params else None

        def run() -> JobView:
            with self._db.transaction() as session:
                job = session.get_one(Job, view.id, with_for_update=True)
                if params is not None:
                    if not may_edit_params(JobState(job.status)):
                        raise FailedPrecondition(f"parameters change only while PENDING; the job is {job.status}")
                    # The dispatched message carries the old parameters: flag it cancelled and send a new attempt.
                    enqueue(session, OUTBOX, cancel_message(job))
                    replace_attempt(job)
                    job.params = params
                    input_file = session.get(File, job.input_file_id) if job.input_file_id else None
                    enqueue(session, OUTBOX, dispatch_message(job, input_file))
                if changes.name is not None:
                    job.name = changes.name.strip()
                if changes.description is not None:
                    job.description = changes.description
                touch(job)
                return self._view(session, job)

        updated = await asyncio.to_thread(run)
        await self._publish(updated)
        return updated

    async def cancel(self, caller: Caller, job_id: str) -> JobView:
        """A pending job is CANCELLED now and never starts; a running one stops at its next checkpoint."""
        view = await self._require(caller, job_id, Access.WRITE)
        updated = await asyncio.to_thread(self._cancel, view.id)
        await self._publish(updated)
        return updated

    def _cancel(self, job_id: uuid.UUID) -> JobView:
        with self._db.transaction() as session:
            job = session.get_one(Job, job_id, with_for_update=True)
            state = JobState(job.status)
            if not may_cancel(state):
                raise FailedPrecondition(f"the job is already {state.value}")
            enqueue(session, OUTBOX, cancel_message(job))
            job.cancel_requested = True
            if state is JobState.PENDING:
                finish(job, JobState.CANCELLED, error="cancelled on request")
            else:
                touch(job)  # a running job ends when its worker reports the cancel
            return self._view(session, job)

    async def retry(self, caller: Caller, job_id: str) -> JobView:
        """Run a FAILED or CANCELLED job again as a new attempt; the old one stays in the history."""
        view = await self._require(caller, job_id, Access.WRITE)

        def run() -> JobView:
            with self._db.transaction() as session:
                job = session.get_one(Job, view.id, with_for_update=True)
                if not may_retry(JobState(job.status)):
                    raise FailedPrecondition(f"only FAILED or CANCELLED jobs can be retried; the job is {job.status}")
                new_attempt(session, job)
                input_file = session.get(File, job.input_file_id) if job.input_file_id else None
                enqueue(session, OUTBOX, dispatch_message(job, input_file))
                return self._view(session, job)

        updated = await asyncio.to_thread(run)
        await self._publish(updated)
        return updated

    async def delete(self, caller: Caller, job_id: str) -> None:
        """Delete a job (a running one is told to stop first) and its result files."""
        view = await self._require(caller, job_id, Access.WRITE)
        final = await asyncio.to_thread(self.remove, view.id)
        if final is not None:
            await self._publish(final)

    def remove(self, job_id: uuid.UUID) -> JobView | None:
        """Delete a job row and its blobs; returns the job as CANCELLED if it was still active (for watchers)."""
        with self._db.transaction() as session:
            job = session.get(Job, job_id, with_for_update=True)
            if job is None:
                return None
            ending = None
            if may_cancel(JobState(job.status)):
                enqueue(session, OUTBOX, cancel_message(job))
                finish(job, JobState.CANCELLED, error="the job was deleted")
                ending = JobView.of(job)
            session.delete(job)
        self._blobs.delete_prefix(f"results/{job_id}")
        return ending

    async def update_progress(self, caller: Caller, job_id: str, progress: int, message: str) -> JobView:
        """Set progress by hand (admins): never lower than stored, only while the job is active."""
        if not sees_everything(caller):
            raise PermissionDenied("only admins and service accounts report progress")
        view = await self._require(caller, job_id, Access.READ)
        if not 0 <= progress <= 100:
            raise InvalidArgument("progress must be between 0 and 100")

        def run() -> JobView:
            with self._db.transaction() as session:
                job = session.get_one(Job, view.id, with_for_update=True)
                if JobState(job.status).final:
                    raise FailedPrecondition(f"the job is already {job.status}")
                job.progress = max(job.progress, progress)
                if message:
                    job.message = message
                touch(job)
                return self._view(session, job)

        updated = await asyncio.to_thread(run)
        await self._publish(updated)
        return updated

    async def result_of(self, caller: Caller, job_id: str) -> ResultView:
        """The result of a COMPLETED job."""
        view = await self._require(caller, job_id, Access.READ)

        def run() -> ResultView:
            with self._db.transaction() as session:
                row = session.scalar(select(Result).where(Result.job_id == view.id))
                if row is None:
                    raise FailedPrecondition(f"the job is {view.status.value}; a result exists once it COMPLETED")
                return ResultView.of(row, view.project_id, job_log_lines(session, view.id))

        return await asyncio.to_thread(run)

    async def recent_logs(self, job_id: uuid.UUID, attempt: int, limit: int = 100) -> list[str]:
        """The last log lines of an attempt, oldest first (for a watcher's first message)."""

        def run() -> list[str]:
            with self._db.transaction() as session:
                rows = session.scalars(
                    select(JobLog.line)
                    .where(JobLog.job_id == job_id, JobLog.attempt == attempt)
                    .order_by(JobLog.id.desc())
                    .limit(limit)
                )
                return list(reversed(list(rows)))

        return await asyncio.to_thread(run)


# What one page of jobs may weigh, encoded: the gateway's transcoder buffers a whole answer and refuses one over
# 1 MiB (gateway/), so a page of long jobs is cut short (with a next page) instead of failing. The largest job
# the field limits allow weighs under half of this (tests/unit/test_field_limits.py), so a page holds at least one.
PAGE_BUDGET_BYTES = 640 * 1024
# Ids, times, enums and field tags of one job, over its texts.
_JOB_OVERHEAD_BYTES = 512


def within_page_budget(rows: list[Job]) -> list[Job]:
    """The leading rows whose encoded size stays within PAGE_BUDGET_BYTES (always at least one)."""
    kept: list[Job] = []
    used = 0
    for row in rows:
        texts = (row.name, row.description, row.message, row.error, row.input_url, row.worker_id)
        size = _JOB_OVERHEAD_BYTES + len(row.params) + sum(len(text.encode()) for text in texts)
        if kept and used + size > PAGE_BUDGET_BYTES:
            break
        kept.append(row)
        used += size
    return kept


def job_log_lines(session: Session, job_id: uuid.UUID) -> list[str]:
    """Every log line of a job, oldest first."""
    return list(session.scalars(select(JobLog.line).where(JobLog.job_id == job_id).order_by(JobLog.id)))
