"""The watch streams' domain: a snapshot, then every change the caller may still read.

A stream decides its caller's access once per project and keeps the decision until something may
have changed it: the projects service announces every change of membership, role or deletion
(AccessChanged in the stream's queue), and a decision older than `recheck_seconds` is taken again in
case an announcement was lost. A revoked or expired session ends the stream (WatchHub). Nothing is
sent without a current decision.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator

from services.common.errors import NotFound
from services.common.identity import Caller
from services.jobs.access import JobAccess
from services.jobs.book import JobBook, JobQuery
from services.jobs.lifecycle import JobState
from services.jobs.projects_client import Access
from services.jobs.views import JobView
from services.jobs.watch import AccessChanged, JobChange, WatchHub

# The first message of WatchJobs: pending and running jobs, read in pages of this size (all of them).
SNAPSHOT_PAGE = 500


def normalized(object_id: str) -> str:
    """A UUID in its canonical spelling (so the hub's string comparisons match), or the text as given."""
    try:
        return str(uuid.UUID(object_id))
    except ValueError:
        return object_id


class StreamAccess:
    """One stream's access decisions, per project."""

    def __init__(self, access: JobAccess, caller: Caller, recheck_seconds: float) -> None:
        self._access = access
        self._caller = caller
        self._recheck = recheck_seconds
        self._decided: dict[str, tuple[bool, float]] = {}

    def knows(self, project_id: str) -> bool:
        """True when a decision about the project is held."""
        return project_id in self._decided

    def allow(self, project_id: str) -> None:
        """Record a decision just taken elsewhere (the snapshot's own access check)."""
        self._decided[project_id] = (True, time.monotonic())

    def forget(self, project_id: str) -> None:
        """Drop a decision that may be stale."""
        self._decided.pop(project_id, None)

    async def may_read(self, project_id: str) -> bool:
        """Whether the caller may read the project's jobs now (asks again when the decision is stale)."""
        now = time.monotonic()
        held = self._decided.get(project_id)
        if held is not None and now - held[1] <= self._recheck:
            return held[0]
        allowed = await self._access.level(self._caller, project_id) >= Access.READ
        self._decided[project_id] = (allowed, now)
        return allowed


class JobWatch:
    """WatchJob and WatchJobs without the wire: each yields JobChanges for the edge to write."""

    def __init__(self, book: JobBook, hub: WatchHub, access: JobAccess, recheck_seconds: float) -> None:
        self._book = book
        self._hub = hub
        self._access = access
        self._recheck = recheck_seconds

    async def job(self, caller: Caller, job_id: str) -> AsyncGenerator[JobChange, None]:
        """The job as stored with its latest log lines, then each change until it is final.

        Ends NOT_FOUND when the caller loses access to the job's project while watching.
        """
        # Open before reading the snapshot: a change between the two is buffered, not lost.
        watcher = self._hub.open(normalized(job_id), caller)
        try:
            view = await self._book.get(caller, job_id)
            yield JobChange(view, tuple(await self._book.recent_logs(view.id, view.attempt)))
            if view.status.final:
                return
            project = str(view.project_id)
            access = StreamAccess(self._access, caller, self._recheck)
            access.allow(project)
            last = view.version
            async for item in watcher.items():
                if isinstance(item, AccessChanged):
                    if item.project_id == project:
                        access.forget(project)
                        await self._still_readable(access, project, f"job {job_id!r}")
                    continue
                if item.view.version <= last:
                    continue
                await self._still_readable(access, project, f"job {job_id!r}")
                last = item.view.version
                yield item
                if item.view.status.final:
                    return
        finally:
            self._hub.close(watcher)

    async def check_jobs(self, caller: Caller, project_id: str) -> None:
        """NOT_FOUND before the stream opens when a project is asked for that the caller may not read."""
        if project_id:
            await self._access.require(caller, normalized(project_id), Access.READ, f"project {project_id!r}")

    async def jobs(self, caller: Caller, project_id: str) -> AsyncGenerator[JobChange, None]:
        """Every pending and running job the caller may read (of one project, if given), then every change.

        A change of a project the caller may no longer read is not sent; with `project_id` given, losing
        access to it ends the stream NOT_FOUND.
        """
        wanted = normalized(project_id) if project_id else ""
        watcher = self._hub.open(None, caller)
        try:
            access = StreamAccess(self._access, caller, self._recheck)
            if wanted:
                access.allow(wanted)
            last: dict[str, int] = {}
            async for view in self._snapshot(caller, project_id):
                access.allow(str(view.project_id))
                last[str(view.id)] = view.version
                yield JobChange(view)
            async for item in watcher.items():
                if isinstance(item, AccessChanged):
                    if item.project_id == wanted:
                        access.forget(wanted)
                        await self._still_readable(access, wanted, f"project {project_id!r}")
                    else:
                        access.forget(item.project_id)
                    continue
                view = item.view
                job_project = str(view.project_id)
                if wanted and job_project != wanted:
                    continue
                if view.version <= last.get(str(view.id), 0):
                    continue
                if wanted:
                    await self._still_readable(access, wanted, f"project {project_id!r}")
                elif not await access.may_read(job_project):
                    continue
                last[str(view.id)] = view.version
                yield item
        finally:
            self._hub.close(watcher)

    async def _snapshot(self, caller: Caller, project_id: str) -> AsyncIterator[JobView]:
        for state in (JobState.PENDING, JobState.RUNNING):
            token = ""
            while True:
                page = await self._book.list_jobs(
                    caller,
                    JobQuery(page_size=SNAPSHOT_PAGE, page_token=token, project_id=project_id, status=state.value),
                )
                for view in page.jobs:
                    yield view
                token = page.next_page_token
                if not token:
                    break

    @staticmethod
    async def _still_readable(access: StreamAccess, project_id: str, what: str) -> None:
        if not await access.may_read(project_id):
            raise NotFound(f"{what} not found")
