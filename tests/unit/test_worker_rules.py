"""The worker runtime's small pieces, each alone: retry and time-limit rules, cancel flags, heartbeats."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
from aiorch.jobs.v1 import events_pb2, types_pb2

from services.common.job_params import SttParams, TtsParams
from services.workers.assignment import Assignment, BadAssignment
from services.workers.cancel import cancel_requested
from services.workers.consumer import consumer_config
from services.workers.engines.base import BadInput, Cancelled, TransientError
from services.workers.events import event_msg_id
from services.workers.heartbeat import Heartbeat, heartbeat_interval
from services.workers.outcomes import (
    CancelledByRequest,
    Failed,
    HandBack,
    Retry,
    after_error,
    after_stop,
    backoff_seconds,
    beyond_last_delivery,
)
from services.workers.periodic import Periodic
from services.workers.stop import StopFlag, StopReason
from services.workers.timelimit import Deadline, parse_time_limits, time_limit_for


def test_bad_input_fails_at_once_even_on_the_first_delivery() -> None:
    assert after_error(BadInput("text is empty"), delivery=1, max_deliver=3) == Failed("text is empty")


@pytest.mark.parametrize("error", [TransientError("disk full"), RuntimeError("disk full")])
def test_transient_and_unexpected_errors_are_retried_with_backoff(error: Exception) -> None:
    assert after_error(error, delivery=1, max_deliver=3) == Retry("disk full", 2.0)
    assert after_error(error, delivery=2, max_deliver=3) == Retry("disk full", 4.0)


def test_the_last_delivery_gives_up_with_the_reason() -> None:
    assert after_error(TransientError("disk full"), delivery=3, max_deliver=3) == Failed(
        "gave up after 3 attempts: disk full"
    )


def test_an_error_without_a_message_is_named_by_its_type() -> None:
    assert after_error(KeyError(), delivery=3, max_deliver=3) == Failed("gave up after 3 attempts: KeyError")


def test_backoff_doubles_up_to_a_cap() -> None:
    assert [backoff_seconds(d) for d in (1, 2, 3, 4)] == [2.0, 4.0, 8.0, 16.0]
    assert backoff_seconds(30) == 60.0


def test_a_delivery_beyond_the_last_fails_the_job_because_its_worker_died() -> None:
    assert beyond_last_delivery(3, max_deliver=3) is None
    failed = beyond_last_delivery(4, max_deliver=3)
    assert failed is not None
    assert failed.reason.startswith("gave up after 3 attempts: the worker running the last one stopped")


def test_a_stop_means_cancelled_failed_or_handed_back_by_its_reason() -> None:
    assert after_stop(StopReason.CANCELLED, 120) == CancelledByRequest()
    assert after_stop(StopReason.TIME_LIMIT, 120) == Failed("time limit of 120 s exceeded")
    assert after_stop(StopReason.TIME_LIMIT, 0.5) == Failed("time limit of 0.5 s exceeded")
    assert after_stop(StopReason.SHUTDOWN, 120) == HandBack()


def test_time_limits_are_per_type_with_a_default() -> None:
    limits = parse_time_limits("TTS=120, dubbing=3600,")

    assert limits == {"TTS": 120.0, "DUBBING": 3600.0}
    assert time_limit_for("DUBBING", limits, 900) == 3600
    assert time_limit_for("STT", limits, 900) == 900


@pytest.mark.parametrize("text", ["TTS", "TTS=", "TTS=soon", "=5", "TTS=-1"])
def test_malformed_time_limits_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="TYPE=SECONDS"):
        parse_time_limits(text)


def test_the_deadline_stops_a_job_that_runs_too_long_and_only_that() -> None:
    async def scenario() -> tuple[StopReason | None, StopReason | None]:
        late, early = StopFlag(), StopFlag()
        async with Deadline(0.05, late):
            await asyncio.sleep(0.15)
        async with Deadline(0.05, early):
            pass
        await asyncio.sleep(0.1)
        return late.reason, early.reason

    assert asyncio.run(scenario()) == (StopReason.TIME_LIMIT, None)


@pytest.mark.parametrize(
    ("value", "attempt", "expected"),
    [(None, 1, False), (b"1", 1, True), (b"2", 1, True), (b"1", 2, False), (b" 3\n", 3, True), (b"yes", 5, True)],
)
def test_a_cancel_flag_stops_its_attempt_and_earlier_ones(value: bytes | None, attempt: int, expected: bool) -> None:
    assert cancel_requested(value, attempt) is expected


def test_the_first_stop_reason_wins_and_the_engine_sees_it_as_cancelled() -> None:
    stop = StopFlag()
    stop.raise_if_requested()

    stop.request(StopReason.CANCELLED)
    stop.request(StopReason.SHUTDOWN)

    assert stop.reason is StopReason.CANCELLED
    with pytest.raises(Cancelled):
        stop.raise_if_requested()


def test_heartbeats_beat_every_interval_until_the_block_ends() -> None:
    beats: list[float] = []

    async def beat() -> None:
        beats.append(time.monotonic())

    async def scenario() -> tuple[int, int]:
        async with Heartbeat(beat, 0.05) as heartbeat:
            await asyncio.sleep(0.28)
        during = heartbeat.beats
        await asyncio.sleep(0.15)
        return during, len(beats)

    during, total = asyncio.run(scenario())
    assert 3 <= during <= 5
    assert total == during
    assert heartbeat_interval(30) == 10


def test_a_failing_heartbeat_does_not_end_the_job() -> None:
    async def beat() -> None:
        raise ConnectionError("reconnecting")

    async def scenario() -> str:
        async with Heartbeat(beat, 0.01):
            await asyncio.sleep(0.05)
        return "finished"

    assert asyncio.run(scenario()) == "finished"


class _SwallowsCancel(Periodic):
    async def step(self) -> bool:
        # What asyncio.wait_for inside nats-py can do on Python 3.11.
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(0.02)
        return True


def test_a_periodic_step_that_swallows_cancellation_still_ends_with_its_block() -> None:
    async def scenario() -> str:
        async with _SwallowsCancel(0.001, first_delay=0):
            await asyncio.sleep(0.05)
        return "left the block"

    assert asyncio.run(asyncio.wait_for(scenario(), 2)) == "left the block"


def test_event_ids_name_job_attempt_delivery_and_sequence() -> None:
    assert event_msg_id("j1", 2, 1, 3) == "j1:2:1:3"


def test_the_consumer_of_a_type_allows_one_delivery_beyond_the_last() -> None:
    config = consumer_config("VOICE_CLONING", ack_wait=30, max_deliver=3, concurrency=4)

    assert config.durable_name == "workers-voice-cloning"
    assert config.filter_subject == "jobs.dispatch.voice_cloning"
    assert config.ack_wait == 30
    assert config.max_deliver == 4
    assert config.max_ack_pending is not None
    assert config.max_ack_pending >= 4


def test_a_dispatch_message_becomes_a_plain_object() -> None:
    message = events_pb2.DispatchJob(
        job_id="j1",
        type=types_pb2.TTS,
        attempt=2,
        params=types_pb2.JobParams(tts=types_pb2.TtsParams(text="hi")),
        output_prefix="results/j1/2/",
    )
    message.created_at.FromSeconds(1_700_000_000)

    job = Assignment.from_bytes(message.SerializeToString())

    assert (job.job_id, job.job_type, job.attempt, job.output_prefix) == ("j1", "TTS", 2, "results/j1/2")
    assert job.created_at is not None
    assert job.created_at.timestamp() == 1_700_000_000
    assert job.typed_params() == TtsParams(text="hi")


def test_a_dispatch_without_parameters_carries_its_types_defaults() -> None:
    message = events_pb2.DispatchJob(job_id="j1", type=types_pb2.STT)

    assert Assignment.from_bytes(message.SerializeToString()).typed_params() == SttParams()


def test_parameters_of_another_type_are_bad_input() -> None:
    message = events_pb2.DispatchJob(
        job_id="j1", type=types_pb2.TTS, params=types_pb2.JobParams(stt=types_pb2.SttParams())
    )

    with pytest.raises(BadInput, match="parameters for STT given to a TTS job"):
        Assignment.from_bytes(message.SerializeToString()).typed_params()


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xff\xff",
        events_pb2.DispatchJob(job_id="j1").SerializeToString(),
        events_pb2.DispatchJob(
            job_id="j1", type=types_pb2.JobType.ValueType(99)
        ).SerializeToString(),  # a type this worker's protos lack
        events_pb2.DispatchJob(type=types_pb2.TTS).SerializeToString(),
    ],
)
def test_messages_that_name_no_job_cannot_be_reported_on(data: bytes) -> None:
    with pytest.raises(BadAssignment):
        Assignment.from_bytes(data)
