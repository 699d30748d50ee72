"""A real worker process against a real nats-server: dispatch messages in, JobEvents and blobs out."""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
import time
import uuid
import wave
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import nats
import nats.errors
import pytest
from aiorch.jobs.v1 import events_pb2, types_pb2

from services.common import messaging
from tests.worker_process import Worker, start_worker

# Starts its own nats-server and worker processes: no fixture of the session stack says so, hence explicit.
pytestmark = pytest.mark.stack

BIN = Path(sys.executable).parent
TERMINAL = ("completed", "failed", "cancelled")
SENTENCE = "The quick brown fox jumps over the lazy dog."
# About four seconds of synthesis: long enough to cancel, stop or time out in the middle.
LONG_TEXT = " ".join(["Speech takes time to make, one sentence after another, on and on."] * 450)


@dataclass
class Run:
    """What a test saw of one job."""

    events: list[events_pb2.JobEvent] = field(default_factory=list)
    msg_ids: list[str] = field(default_factory=list)
    cancel_sent_at: float | None = None
    ended_at: float | None = None

    @property
    def kinds(self) -> list[str]:
        return [str(e.WhichOneof("kind")) for e in self.events]


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    """A worker for TTS and STT jobs with default settings."""
    running = start_worker(tmp_path_factory.mktemp("worker"), "tts,stt", AIORCH_WORKER_ID="test-worker")
    yield running
    running.supervisor.stop_all()


def dispatch_job(
    job_type: types_pb2.JobType.ValueType, params: types_pb2.JobParams | None = None, input_url: str = ""
) -> events_pb2.DispatchJob:
    job_id = uuid.uuid4().hex
    job = events_pb2.DispatchJob(
        job_id=job_id,
        type=job_type,
        attempt=1,
        params=params,
        input_url=input_url,
        output_prefix=f"results/{job_id}/1",
    )
    job.created_at.GetCurrentTime()
    return job


def tts_job(text: str) -> events_pb2.DispatchJob:
    return dispatch_job(types_pb2.TTS, params=types_pb2.JobParams(tts=types_pb2.TtsParams(text=text)))


async def _run_job(
    nats_url: str,
    job: events_pb2.DispatchJob,
    cancel_before: bool,
    cancel_on_progress: bool,
    until: str | None,
    timeout: float,
) -> Run:
    run = Run()
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        # The events stream is a work queue; a consumer per job filters only that job's events.
        sub = await js.pull_subscribe(
            messaging.events_subject(job.job_id), durable=f"test-{job.job_id}", stream=messaging.EVENTS_STREAM
        )
        kv = await js.key_value(messaging.CANCEL_BUCKET)
        if cancel_before:
            await kv.put(job.job_id, str(job.attempt).encode())
        subject = messaging.dispatch_subject(types_pb2.JobType.Name(job.type))
        await js.publish(subject, job.SerializeToString(), headers={"Nats-Msg-Id": job.job_id})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                messages = await sub.fetch(20, timeout=0.2)
            except (nats.errors.TimeoutError, TimeoutError):
                continue
            for msg in messages:
                event = events_pb2.JobEvent()
                event.ParseFromString(msg.data)
                await msg.ack()
                run.events.append(event)
                run.msg_ids.append((msg.headers or {}).get("Nats-Msg-Id", ""))
            if cancel_on_progress and run.cancel_sent_at is None and "progress" in run.kinds:
                await kv.put(job.job_id, str(job.attempt).encode())
                run.cancel_sent_at = time.monotonic()
            if run.kinds and run.kinds[-1] in ((until,) if until else TERMINAL):
                run.ended_at = time.monotonic()
                break
    finally:
        await nc.close()
    return run


def run_job(
    nats_url: str,
    job: events_pb2.DispatchJob,
    cancel_before: bool = False,
    cancel_on_progress: bool = False,
    until: str | None = None,
    timeout: float = 30.0,
) -> Run:
    """Dispatch `job` and collect its events until a final one (or the kind `until`)."""
    return asyncio.run(_run_job(nats_url, job, cancel_before, cancel_on_progress, until, timeout))


def test_a_tts_job_reports_started_rising_progress_and_a_wav_result(worker: Worker) -> None:
    job = tts_job(f"{SENTENCE} {SENTENCE}")

    run = run_job(worker.nats_url, job)

    assert run.kinds[0] == "started"
    assert run.kinds[-1] == "completed"
    assert set(run.kinds[1:-1]) <= {"progress", "log"}
    percents = [e.progress.percent for e in run.events if e.WhichOneof("kind") == "progress"]
    assert percents == sorted(set(percents))
    assert percents[-1] == 100
    assert [e.sequence for e in run.events] == list(range(1, len(run.events) + 1))
    assert run.msg_ids == [f"{job.job_id}:1:1:{e.sequence}" for e in run.events]
    assert {(e.job_id, e.attempt, e.delivery, e.worker_id) for e in run.events} == {(job.job_id, 1, 1, "test-worker")}
    completed = run.events[-1].completed
    assert list(completed.output_keys) == [f"results/{job.job_id}/1/speech.wav"]
    local = worker.blobs.root / completed.output_keys[0]
    with wave.open(str(local), "rb") as wav:
        duration = wav.getnframes() / wav.getframerate()
    assert 2.0 < duration < 15.0
    assert completed.meta["duration_seconds"] == pytest.approx(duration, abs=0.01)
    assert completed.meta["format"] == "wav"


def test_a_job_cancelled_before_it_starts_never_runs(worker: Worker) -> None:
    run = run_job(worker.nats_url, tts_job(SENTENCE), cancel_before=True)

    assert run.kinds == ["cancelled"]


def test_a_running_job_cancelled_midway_ends_cancelled_within_two_seconds(worker: Worker) -> None:
    run = run_job(worker.nats_url, tts_job(LONG_TEXT), cancel_on_progress=True)

    assert run.kinds[-1] == "cancelled"
    assert "completed" not in run.kinds
    assert run.cancel_sent_at is not None
    assert run.ended_at is not None
    assert run.ended_at - run.cancel_sent_at < 2.0


def test_bad_input_fails_at_once_without_retry(worker: Worker) -> None:
    params = types_pb2.JobParams(tts=types_pb2.TtsParams(text="Hello.", format="aiff"))
    run = run_job(worker.nats_url, dispatch_job(types_pb2.TTS, params=params))

    assert run.kinds == ["started", "failed"]
    failed = run.events[-1].failed
    assert not failed.retryable
    assert "aiff" in failed.reason


class _Audio(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "4")
        self.end_headers()
        self.wfile.write(b"RIFF")

    def log_message(self, *args: object) -> None:
        pass


def test_an_input_url_on_the_loopback_interface_is_refused_with_a_clear_reason(worker: Worker) -> None:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Audio)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/talk.wav"
        run = run_job(worker.nats_url, dispatch_job(types_pb2.STT, input_url=url))
    finally:
        httpd.shutdown()

    assert run.kinds[-1] == "failed"
    failed = run.events[-1].failed
    assert not failed.retryable
    # The reason says what to fix, not how the host resolved (that goes to the worker's log).
    assert "input_url is not reachable or not allowed" in failed.reason
    assert "127.0.0.1" not in failed.reason


def test_a_job_past_its_time_limit_fails_without_retry(tmp_path: Path) -> None:
    limited = start_worker(tmp_path, types="tts", AIORCH_WORKER_TIME_LIMITS="TTS=1")
    try:
        started = time.monotonic()
        run = run_job(limited.nats_url, tts_job(LONG_TEXT))
        elapsed = time.monotonic() - started
    finally:
        limited.supervisor.stop_all()

    assert run.kinds[-1] == "failed"
    assert run.events[-1].failed.reason == "time limit of 1 s exceeded"
    assert not run.events[-1].failed.retryable
    assert elapsed < 4.0


async def _dispatch_messages_left(nats_url: str) -> int:
    nc = await nats.connect(nats_url)
    try:
        info = await nc.jetstream().stream_info(messaging.DISPATCH_STREAM)
        return int(info.state.messages)
    finally:
        await nc.close()


async def _more_events(nats_url: str, job_id: str) -> list[events_pb2.JobEvent]:
    nc = await nats.connect(nats_url)
    try:
        sub = await nc.jetstream().pull_subscribe_bind(durable=f"test-{job_id}", stream=messaging.EVENTS_STREAM)
        try:
            messages = await sub.fetch(100, timeout=0.5)
        except (nats.errors.TimeoutError, TimeoutError):
            return []
        events = []
        for msg in messages:
            event = events_pb2.JobEvent()
            event.ParseFromString(msg.data)
            await msg.ack()
            events.append(event)
        return events
    finally:
        await nc.close()


def test_sigterm_hands_a_running_job_back_and_exits_cleanly(tmp_path: Path) -> None:
    stopping = start_worker(tmp_path, types="tts", AIORCH_SHUTDOWN_GRACE_SECONDS="0.2")
    try:
        job = tts_job(LONG_TEXT)
        run_job(stopping.nats_url, job, until="progress")
        signalled = time.monotonic()
        stopping.supervisor.process("worker").send_signal(signal.SIGTERM)
        code = stopping.supervisor.process("worker").wait(15)
        stop_seconds = time.monotonic() - signalled
        later = asyncio.run(_more_events(stopping.nats_url, job.job_id))
        after = run_job(stopping.nats_url, tts_job(SENTENCE), until="log", timeout=2)
        left = asyncio.run(_dispatch_messages_left(stopping.nats_url))
    finally:
        stopping.supervisor.stop_all()

    assert code == 0
    assert stop_seconds < 5.0
    assert "completed" not in [e.WhichOneof("kind") for e in later]
    assert later[-1].log.line == "the worker is shutting down; the job goes back to the queue"
    assert after.kinds == []  # nobody takes new work
    assert left == 2  # the handed-back job and the new one wait for the next worker


def test_an_idle_worker_stops_at_once_on_sigterm(tmp_path: Path) -> None:
    idle = start_worker(tmp_path, types="tts")
    try:
        signalled = time.monotonic()
        idle.supervisor.process("worker").send_signal(signal.SIGTERM)
        code = idle.supervisor.process("worker").wait(15)
        stop_seconds = time.monotonic() - signalled
    finally:
        idle.supervisor.stop_all()

    assert code == 0
    assert stop_seconds < 3.0
