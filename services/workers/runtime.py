"""One delivery of one dispatch message, from `started` to ack, nak or term.

The engine call sits in the middle; around it small pieces each do one thing: the heartbeat keeps the
message ours, the cancel watch and the deadline set the stop flag, the outcome rules decide retry or
failure, and the events publisher reports. Every path ends the message exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from nats.aio.msg import Msg
from nats.js import JetStreamContext

from services.common.blobs import BlobStore
from services.common.job_params import JobParams
from services.common.logging import get_logger
from services.workers import worker_metrics
from services.workers.assignment import Assignment, BadAssignment
from services.workers.cancel import CancelFlags
from services.workers.container_memory import fit_ceiling
from services.workers.context import RunContext
from services.workers.engine_process import MIB, EnginePool
from services.workers.engines.base import BadInput, Cancelled, Engine, EngineResult
from services.workers.events import EventPublisher, EventPublishError
from services.workers.heartbeat import Heartbeat, heartbeat_interval
from services.workers.input_limits import InputLimits, check_media_limits
from services.workers.inputs import UrlPolicy, gather_inputs
from services.workers.outcomes import (
    CancelledByRequest,
    Completed,
    Failed,
    HandBack,
    Outcome,
    Retry,
    after_error,
    after_stop,
    backoff_seconds,
    beyond_last_delivery,
)
from services.workers.stop import StopFlag, StopReason
from services.workers.timelimit import Deadline, time_limit_for

log = get_logger(__name__)

# How long a stopped engine may take to reach its next checkpoint before the runtime stops waiting for it.
STOP_GRACE_SECONDS = 1.0
# Resident memory one engine process may hold (models, decoded media, its ffmpeg) before its job is killed.
DEFAULT_MEMORY_LIMIT_MIB = 3072.0


@dataclass(frozen=True)
class RuntimeConfig:
    """What the runtime needs from the worker settings."""

    worker_id: str
    ack_wait_seconds: float
    max_deliver: int
    default_time_limit: float
    url_policy: UrlPolicy
    time_limits: dict[str, float] = field(default_factory=dict)
    input_limits: InputLimits = field(default_factory=InputLimits)
    stop_grace_seconds: float = STOP_GRACE_SECONDS
    memory_limit_mib: float = DEFAULT_MEMORY_LIMIT_MIB
    memory_limits_mib: dict[str, float] = field(default_factory=dict)
    # The container's memory limit (None: none) and how many engine processes may run in it at once.
    container_memory_bytes: int | None = None
    engine_processes: int = 1

    def memory_limit_bytes(self, job_type: str) -> int:
        """The memory ceiling of one engine process of `job_type`, kept under the container's share."""
        configured = int(self.memory_limits_mib.get(job_type.upper(), self.memory_limit_mib) * MIB)
        return fit_ceiling(configured, self.engine_processes, self.container_memory_bytes)


class JobRunner:
    """Runs deliveries of the job types it has engines for."""

    def __init__(
        self,
        js: JetStreamContext,
        cancels: CancelFlags,
        store: BlobStore,
        engines: dict[str, Engine],
        config: RuntimeConfig,
    ) -> None:
        self._js = js
        self._cancels = cancels
        self._store = store
        self._config = config
        self._pools = {
            job_type: EnginePool(engine, config.memory_limit_bytes(job_type), config.stop_grace_seconds)
            for job_type, engine in engines.items()
        }
        for pool in self._pools.values():
            pool.warm_up()
        log.info(
            "engine memory ceilings",
            ceilings_mib={job_type: config.memory_limit_bytes(job_type) // MIB for job_type in engines},
        )
        self._running: set[StopFlag] = set()

    @property
    def running(self) -> int:
        """Jobs whose engines run now."""
        return len(self._running)

    def close(self) -> None:
        """Stop every engine process (after the last job)."""
        for pool in self._pools.values():
            pool.close()

    def hand_back_all(self) -> None:
        """Shutdown: ask every running job to stop; each is nak'ed back to the queue."""
        for stop in list(self._running):
            stop.request(StopReason.SHUTDOWN)

    async def process(self, msg: Msg) -> None:
        """Handle one delivery; never raises."""
        delivery = msg.metadata.num_delivered or 1
        try:
            job = Assignment.from_bytes(msg.data)
        except BadAssignment as exc:
            log.error("dropping dispatch message", error=str(exc), subject=msg.subject)
            await _quietly(msg.term())
            return
        bound = log.bind(job_id=job.job_id, attempt=job.attempt, delivery=delivery, job_type=job.job_type)
        events = EventPublisher(self._js, job.job_id, job.attempt, self._config.worker_id, delivery, grant=job.grant)
        try:
            outcome = await self._deliver(msg, job, delivery, events)
            await self._finish(msg, job, events, outcome)
            worker_metrics.JOBS.labels(job.job_type, _outcome_label(outcome)).inc()
            bound.info("delivery handled", outcome=_outcome_label(outcome))
        except EventPublishError as exc:
            bound.error("events could not be published; the job goes back to the queue", error=str(exc))
            await _quietly(msg.nak(delay=backoff_seconds(delivery)))
        except Exception:
            bound.exception("delivery failed unexpectedly; the job goes back to the queue")
            await _quietly(msg.nak(delay=backoff_seconds(delivery)))

    async def _deliver(self, msg: Msg, job: Assignment, delivery: int, events: EventPublisher) -> Outcome:
        gave_up = beyond_last_delivery(delivery, self._config.max_deliver)
        if gave_up is not None:
            return gave_up
        if await self._cancels.requested(job.job_id, job.attempt):
            return CancelledByRequest()
        time_limit = time_limit_for(job.job_type, self._config.time_limits, self._config.default_time_limit)
        # The jobs service learns the limit, so it can fail the job if this worker dies and none takes over.
        await events.started(time_limit)
        if delivery == 1:
            worker_metrics.observe_queue_wait(job.job_type, job.created_at, datetime.now(UTC))
        stop = StopFlag()
        self._running.add(stop)
        try:
            with (
                worker_metrics.running(job.job_type),
                tempfile.TemporaryDirectory(prefix="aiorch-job-", ignore_cleanup_errors=True) as work,
            ):
                async with (
                    Heartbeat(msg.in_progress, heartbeat_interval(self._config.ack_wait_seconds)),
                    self._cancels.watch(job.job_id, job.attempt, stop),
                    Deadline(time_limit, stop),
                ):
                    return await self._attempt(job, delivery, events, stop, time_limit, Path(work))
        finally:
            self._running.discard(stop)

    async def _attempt(
        self, job: Assignment, delivery: int, events: EventPublisher, stop: StopFlag, time_limit: float, work: Path
    ) -> Outcome:
        pool = self._pools.get(job.job_type)
        try:
            if pool is None:
                raise BadInput(f"this worker does not run {job.job_type} jobs")
            params = job.typed_params()
            inputs = await gather_inputs(
                self._store, job.input_keys, job.input_url, work / "in", self._config.url_policy
            )
            # Bombs (huge images, hours of audio) are refused from their headers, before an engine decodes them.
            await asyncio.to_thread(check_media_limits, job.job_type, inputs, self._config.input_limits)
            output_dir = work / "out"
            output_dir.mkdir()
            result = await self._run_engine(pool, params, inputs, output_dir, events, stop)
            return Completed(await self._upload(job, result, output_dir), result.meta)
        except Cancelled:
            if stop.reason is None:
                raise
            return after_stop(stop.reason, time_limit)
        except EventPublishError:
            raise
        except Exception as exc:
            if not isinstance(exc, BadInput):
                log.warning("attempt failed", job_id=job.job_id, error=str(exc), exc_info=True)
            return after_error(exc, delivery, self._config.max_deliver)

    async def _run_engine(
        self,
        pool: EnginePool,
        params: JobParams,
        inputs: list[Path],
        output_dir: Path,
        events: EventPublisher,
        stop: StopFlag,
    ) -> EngineResult:
        ctx = RunContext(output_dir, stop, events, asyncio.get_running_loop())
        ctx.check_cancelled()
        pump = asyncio.create_task(ctx.pump())

        def stop_if_pump_failed(task: asyncio.Task[None]) -> None:
            # Reports that cannot be published stop the engine; the error surfaces when the pump is awaited.
            if not task.cancelled() and task.exception() is not None:
                stop.request(StopReason.SHUTDOWN)

        pump.add_done_callback(stop_if_pump_failed)
        try:
            # The engine runs in its own process: a stop reaches it at its next checkpoint or kills it after
            # the grace, and a job that passes the memory ceiling is killed with it.
            return await pool.run(params, inputs, ctx, stop)
        finally:
            ctx.close()
            await pump

    async def _upload(self, job: Assignment, result: EngineResult, output_dir: Path) -> list[str]:
        if not result.outputs:
            raise RuntimeError(f"the {job.job_type} engine produced no output")
        keys: list[str] = []
        for path in result.outputs:
            if not path.resolve().is_relative_to(output_dir.resolve()):
                raise RuntimeError(f"engine output {path} is outside its output directory")
            key = f"{job.output_prefix}/{path.name}"
            await asyncio.to_thread(self._store.put_file, key, path)
            keys.append(key)
        return keys

    async def _finish(self, msg: Msg, job: Assignment, events: EventPublisher, outcome: Outcome) -> None:
        if isinstance(outcome, Completed):
            await events.completed(outcome.output_keys, outcome.meta)
            await msg.ack()
        elif isinstance(outcome, Failed):
            await events.failed(outcome.reason, retryable=False)
            await msg.ack()
        elif isinstance(outcome, CancelledByRequest):
            await events.cancelled()
            await msg.ack()
        elif isinstance(outcome, Retry):
            await events.log(f"attempt failed, retrying in {outcome.delay:g} s: {outcome.reason}", "warning")
            await msg.nak(delay=outcome.delay)
        else:
            await events.log("the worker is shutting down; the job goes back to the queue", "warning")
            await msg.nak()


def _outcome_label(outcome: Outcome) -> str:
    labels: dict[type, str] = {
        Completed: "completed",
        Failed: "failed",
        CancelledByRequest: "cancelled",
        Retry: "retried",
        HandBack: "handed_back",
    }
    return labels[type(outcome)]


async def _quietly(ack: Awaitable[None]) -> None:
    # The connection may be gone; the message then returns after AckWait anyway.
    with contextlib.suppress(Exception):
        await ack
