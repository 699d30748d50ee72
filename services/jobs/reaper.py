"""The reaper: RUNNING jobs whose worker is gone are failed instead of staying RUNNING for ever.

JetStream hands a dead worker's job to another worker after AckWait, and a worker fails a job on
the delivery after the last; the reaper covers what that cannot: no worker of the type left, a
dispatch message lost with the JetStream store, or the last delivery's worker dying. Each worker
reports its time limit when it starts a job (the job's `deadline_at`); a RUNNING job silent past
that deadline plus a grace is failed here, and its cancel flag is set so that a late redelivery
does not run the engine for nothing.

Silence is judged only up to the moment every earlier worker event has been applied: after an outage
(of the jobs service, the database or NATS) a job's outcome may still wait in the events stream, and
must not be overtaken by the reaper.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from sqlalchemy import select

from services.common.db import Database, utcnow
from services.common.logging import get_logger
from services.common.loops import TRANSIENT, Backoff, run_forever
from services.common.messaging import EVENTS_STREAM, WORK_QUEUES
from services.common.outbox import enqueue
from services.jobs.job_metrics import JOBS_REAPED
from services.jobs.lifecycle import JobState, abandoned
from services.jobs.models import OUTBOX, Job
from services.jobs.transitions import finish
from services.jobs.views import JobView
from services.jobs.watch import Broadcast
from services.jobs.worker_messages import cancel_message

log = get_logger(__name__)


async def events_applied_until(js: JetStreamContext) -> datetime:
    """A moment before which every worker event has been applied.

    The events stream is a work queue: it keeps exactly the events not yet acknowledged, and the intake
    acknowledges an event after its commit. So the oldest event still there (delivered to an intake or
    not, even to one that died holding it) bounds what is applied; with none left, everything up to the
    moment of asking is.
    """
    asked_at = utcnow()
    info = await js.stream_info(EVENTS_STREAM)
    if info.state.messages == 0:
        return asked_at
    try:
        oldest = await js.get_msg(
            EVENTS_STREAM, seq=info.state.first_seq, subject=WORK_QUEUES[EVENTS_STREAM], next=True
        )
    except NotFoundError:
        # Acknowledged between the two questions: the stream is empty now.
        return asked_at
    return min(asked_at, oldest.time) if oldest.time is not None else asked_at


class JobReaper:
    """One periodic pass over overdue RUNNING jobs; replicas skip each other's locked rows."""

    def __init__(
        self,
        db: Database,
        broadcast: Broadcast,
        wake_relay: Callable[[], None],
        applied_until: Callable[[], Awaitable[datetime]],
        interval: float,
        grace: float,
        batch: int = 100,
    ) -> None:
        self._db = db
        self._broadcast = broadcast
        self._wake = wake_relay
        self._applied_until = applied_until
        self._interval = interval
        self._grace = timedelta(seconds=grace)
        self._batch = batch

    def reap_once(self, now: datetime) -> list[JobView]:
        """Fail the jobs abandoned as of `now` (at most `batch`); their stored views, for the watchers."""
        reaped: list[JobView] = []
        with self._db.transaction() as session:
            overdue = session.scalars(
                select(Job)
                .where(Job.status == JobState.RUNNING.value, Job.deadline_at < now - self._grace)
                .order_by(Job.deadline_at)
                .limit(self._batch)
                # A row another replica (or the event intake) holds is left for the next pass.
                .with_for_update(skip_locked=True)
            )
            for job in overdue:
                if not abandoned(JobState(job.status), job.deadline_at, now, self._grace):
                    continue
                error = (
                    f"abandoned: worker {job.worker_id or '?'} sent no outcome within its time limit "
                    f"and {self._grace.total_seconds():g} s more; it is gone (retry the job to run it again)"
                )
                finish(job, JobState.FAILED, error=error)
                enqueue(session, OUTBOX, cancel_message(job))
                JOBS_REAPED.labels(job.type).inc()
                reaped.append(JobView.of(job))
        return reaped

    async def pass_once(self) -> int:
        """Reap, then publish the cancel flags and tell the watchers; returns how many jobs were failed."""
        reaped = await asyncio.to_thread(self.reap_once, await self._applied_until())
        if reaped:
            self._wake()
            log.warning("failed abandoned jobs", job_ids=[str(view.id) for view in reaped])
        for view in reaped:
            await self._broadcast(view, [])
        return len(reaped)

    async def _pass(self) -> None:
        try:
            await self.pass_once()
        except TRANSIENT as exc:
            # Without the events stream nothing tells which outcomes are still on their way: no reaping.
            log.warning("reaper pass skipped: the events stream cannot be read", error=str(exc))

    async def run(self) -> None:
        """Forever: one pass, then sleep; a database fault is logged and the next pass tries again."""
        every = self._interval
        await run_forever("reaper", self._pass, interval=every, backoff=Backoff(every, every))
