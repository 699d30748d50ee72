"""When the reaper judges a RUNNING job abandoned (its worker gone), and the stream writer's time limit."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from services.common.errors import ResourceExhausted
from services.common.streams import TimedStreamWriter
from services.jobs.lifecycle import JobState, abandoned

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
GRACE = timedelta(seconds=120)


def test_a_running_job_past_its_deadline_and_the_grace_is_abandoned() -> None:
    assert abandoned(JobState.RUNNING, NOW - GRACE - timedelta(seconds=1), NOW, GRACE)


def test_a_running_job_within_the_grace_is_not_abandoned() -> None:
    # The worker stopped it at the deadline and its FAILED event may still be on the way.
    assert not abandoned(JobState.RUNNING, NOW - GRACE + timedelta(seconds=1), NOW, GRACE)
    assert not abandoned(JobState.RUNNING, NOW + timedelta(minutes=5), NOW, GRACE)


def test_a_job_without_a_deadline_is_never_abandoned() -> None:
    assert not abandoned(JobState.RUNNING, None, NOW, GRACE)


@pytest.mark.parametrize("state", [JobState.PENDING, JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED])
def test_only_running_jobs_are_abandoned(state: JobState) -> None:
    assert not abandoned(state, NOW - timedelta(days=1), NOW, GRACE)


class _StalledContext:
    """A stream context whose client never reads: every write waits for ever."""

    def __init__(self) -> None:
        self.writes = 0

    async def write(self, message: object) -> None:
        self.writes += 1
        await asyncio.Event().wait()


class _ReadingContext:
    def __init__(self) -> None:
        self.sent: list[object] = []

    async def write(self, message: object) -> None:
        self.sent.append(message)


def test_a_write_the_client_never_takes_ends_the_stream_with_resource_exhausted() -> None:
    context = _StalledContext()
    with pytest.raises(ResourceExhausted, match=r"read nothing for 0\.05 s"):
        asyncio.run(TimedStreamWriter(context, 0.05).write("update"))
    assert context.writes == 1


def test_writes_a_reading_client_takes_go_through() -> None:
    context = _ReadingContext()

    async def send() -> None:
        writer = TimedStreamWriter(context, 1)
        for n in range(3):
            await writer.write(n)

    asyncio.run(send())
    assert context.sent == [0, 1, 2]
