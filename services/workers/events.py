"""JobEvents back to the jobs service: numbered per delivery, de-duplicated by id, retried while NATS reconnects."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import nats.errors
from aiorch.jobs.v1 import events_pb2
from google.protobuf.struct_pb2 import Struct
from nats.js import JetStreamContext

from services.common import messaging
from services.common.field_limits import clip_to_limits

# Delays between publish tries: about 8 s in all, longer than a NATS reconnect takes.
RETRY_DELAYS = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0)


class EventPublishError(Exception):
    """An event could not be published after every try; the dispatch message must not be acked."""


def event_msg_id(job_id: str, attempt: int, delivery: int, sequence: int) -> str:
    """The Nats-Msg-Id of an event: the same event published twice is stored once."""
    return f"{job_id}:{attempt}:{delivery}:{sequence}"


class EventPublisher:
    """Publishes the events of one delivery of one job, in order, numbering them 1, 2, 3 ..."""

    def __init__(
        self,
        js: JetStreamContext,
        job_id: str,
        attempt: int,
        worker_id: str,
        delivery: int,
        grant: str = "",
        retry_delays: Sequence[float] = RETRY_DELAYS,
    ) -> None:
        self._js = js
        self._job_id = job_id
        self._attempt = attempt
        self._worker_id = worker_id
        self._delivery = delivery
        self._grant = grant
        self._retry_delays = retry_delays
        self._sequence = 0
        self._lock = asyncio.Lock()

    @property
    def sequence(self) -> int:
        """The number of the last event published."""
        return self._sequence

    async def started(self, time_limit_seconds: float = 0.0) -> None:
        """The worker took the job and will stop it after `time_limit_seconds` (0 = not told)."""
        await self._publish(started=events_pb2.JobStarted(time_limit_seconds=time_limit_seconds))

    async def progress(self, percent: int, message: str = "") -> None:
        """Progress moved (clamped to 0-100)."""
        await self._publish(progress=events_pb2.JobProgress(percent=max(0, min(100, percent)), message=message))

    async def log(self, line: str, level: str = "info") -> None:
        """A line for the job's log."""
        await self._publish(log=events_pb2.JobLog(line=line, level=level))

    async def completed(self, output_keys: Sequence[str], meta: dict[str, Any]) -> None:
        """The job finished; the first key is the main result."""
        struct = Struct()
        struct.update(meta)
        await self._publish(completed=events_pb2.JobCompleted(output_keys=list(output_keys), meta=struct))

    async def failed(self, reason: str, retryable: bool = False) -> None:
        """The job failed."""
        await self._publish(failed=events_pb2.JobFailed(reason=reason, retryable=retryable))

    async def cancelled(self) -> None:
        """The job stopped on request."""
        await self._publish(cancelled=events_pb2.JobCancelled())

    async def _publish(self, **kind: Any) -> None:
        async with self._lock:
            sequence = self._sequence + 1
            event = events_pb2.JobEvent(
                job_id=self._job_id,
                attempt=self._attempt,
                worker_id=self._worker_id,
                sequence=sequence,
                delivery=self._delivery,
                grant=self._grant,
                **kind,
            )
            event.at.GetCurrentTime()
            # The jobs service stores these texts and broadcasts them with the job: cut to their limits, a
            # long failure reason still fails the job instead of the event going missing.
            clip_to_limits(event)
            payload = event.SerializeToString()
            headers = {"Nats-Msg-Id": event_msg_id(self._job_id, self._attempt, self._delivery, sequence)}
            subject = messaging.events_subject(self._job_id)
            for delay in (*self._retry_delays, None):
                try:
                    await self._js.publish(subject, payload, headers=headers)
                    break
                except (nats.errors.Error, OSError, TimeoutError) as exc:
                    if delay is None:
                        raise EventPublishError(
                            f"cannot publish event {sequence} of job {self._job_id}: {exc}"
                        ) from exc
                    await asyncio.sleep(delay)
            self._sequence = sequence
