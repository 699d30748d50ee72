"""A real `aiorch worker` against a real nats-server, with its memory watched from outside.

For tests that judge a worker by what it costs: the resident memory of its whole process tree (the worker,
its engine processes and their ffmpeg) is sampled while a job runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import nats
import nats.errors
import psutil
from aiorch.jobs.v1 import events_pb2, types_pb2
from nats.js.errors import NotFoundError

from services.common import messaging
from services.common.blobs import LocalBlobStore
from services.devstack.stack import free_port
from services.devstack.supervisor import Supervisor, wait_until

BIN = Path(sys.executable).parent
TERMINAL = ("completed", "failed", "cancelled")
MIB = 1024 * 1024


@dataclass
class Worker:
    """A nats-server and one worker process."""

    nats_url: str
    blobs: LocalBlobStore
    supervisor: Supervisor

    @property
    def pid(self) -> int:
        """The worker's process id."""
        return int(self.supervisor.process("worker").pid)

    def stop(self) -> None:
        """Stop the worker and nats-server."""
        self.supervisor.stop_all()


@dataclass
class Run:
    """What a test saw of one job: its events and the worker tree's memory while it ran."""

    events: list[events_pb2.JobEvent] = field(default_factory=list)
    peak_rss: int = 0
    seconds: float = 0.0
    cancelled_after: float | None = None

    @property
    def kinds(self) -> list[str]:
        """The kind of each event, in order."""
        return [str(e.WhichOneof("kind")) for e in self.events]

    @property
    def last_percent(self) -> int:
        """The highest progress reported."""
        return max((e.progress.percent for e in self.events if e.WhichOneof("kind") == "progress"), default=0)


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants."""
    total = 0
    with contextlib.suppress(psutil.Error):
        root = psutil.Process(pid)
        for member in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                total += member.memory_info().rss
    return total


class PeakSampler:
    """Samples a process tree's resident memory every 0.1 s in a thread, keeping the peak."""

    def __init__(self, pid: int) -> None:
        self._pid = pid
        self.peak = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, tree_rss(self._pid))
            self._done.wait(0.1)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()


async def _consumers_ready(nats_url: str, names: list[str]) -> bool:
    try:
        nc = await nats.connect(nats_url, allow_reconnect=False, connect_timeout=1)
    except (OSError, nats.errors.Error):
        return False  # nats-server is still starting
    try:
        js = nc.jetstream()
        # The jobs service creates the streams the worker waits for; here the test plays that part.
        await messaging.ensure_topology(js)
        for name in names:
            await js.consumer_info(messaging.DISPATCH_STREAM, name)
    except NotFoundError:
        return False
    finally:
        await nc.close()
    return True


def start_worker(tmp_path: Path, types: str, **env: str) -> Worker:
    """Start nats-server and `aiorch worker --types TYPES`; return once the worker's consumers exist."""
    supervisor = Supervisor(tmp_path / "logs")
    port = free_port()
    (tmp_path / "jetstream").mkdir(parents=True)
    supervisor.start(
        "nats",
        [str(BIN / "nats-server"), "-js", "-sd", str(tmp_path / "jetstream"), "-a", "127.0.0.1", "-p", str(port)],
    )
    nats_url = f"nats://127.0.0.1:{port}"
    worker_env = {
        **os.environ,
        "NATS_URL": nats_url,
        "AIORCH_BLOB_DIR": str(tmp_path / "blobs"),
        "AIORCH_METRICS_PORT": "0",
        "AIORCH_WORKER_ID": "bomb-worker",
        "AIORCH_LOG_FORMAT": "json",
        **env,
    }
    supervisor.start("worker", [str(BIN / "aiorch"), "worker", "--types", types], env=worker_env)
    names = [messaging.worker_consumer(t) for t in types.split(",")]
    try:
        wait_until(lambda: asyncio.run(_consumers_ready(nats_url, names)), 30, "the worker's consumers")
    except BaseException:
        supervisor.stop_all()
        raise
    return Worker(nats_url, LocalBlobStore(tmp_path / "blobs"), supervisor)


def job_with_input(
    worker: Worker, job_type: types_pb2.JobType.ValueType, params: types_pb2.JobParams, source: Path
) -> events_pb2.DispatchJob:
    """A dispatch message for a job whose input is `source`, stored in the worker's blob store."""
    job_id = uuid.uuid4().hex
    key = f"inputs/{job_id}/{source.name}"
    worker.blobs.put_file(key, source)
    job = events_pb2.DispatchJob(
        job_id=job_id,
        type=job_type,
        attempt=1,
        params=params,
        input_keys=[key],
        output_prefix=f"results/{job_id}/1",
    )
    job.created_at.GetCurrentTime()
    return job


def text_job(params: types_pb2.JobParams, job_type: types_pb2.JobType.ValueType) -> events_pb2.DispatchJob:
    """A dispatch message for a job without input (TTS)."""
    job_id = uuid.uuid4().hex
    job = events_pb2.DispatchJob(
        job_id=job_id, type=job_type, attempt=1, params=params, output_prefix=f"results/{job_id}/1"
    )
    job.created_at.GetCurrentTime()
    return job


async def _run(worker: Worker, job: events_pb2.DispatchJob, timeout: float, cancel_at_percent: int | None) -> Run:
    run = Run()
    nc = await nats.connect(worker.nats_url)
    try:
        js = nc.jetstream()
        # The events stream is a work queue; a consumer per job filters only that job's events.
        sub = await js.pull_subscribe(
            messaging.events_subject(job.job_id), durable=f"test-{job.job_id}", stream=messaging.EVENTS_STREAM
        )
        kv = await js.key_value(messaging.CANCEL_BUCKET)
        subject = messaging.dispatch_subject(types_pb2.JobType.Name(job.type))
        started = time.monotonic()
        cancelled = False
        with PeakSampler(worker.pid) as sampler:
            await js.publish(subject, job.SerializeToString(), headers={"Nats-Msg-Id": job.job_id})
            while time.monotonic() - started < timeout:
                if cancel_at_percent is not None and not cancelled and run.last_percent >= cancel_at_percent:
                    await kv.put(job.job_id, str(job.attempt).encode())
                    cancelled = True
                    run.cancelled_after = time.monotonic() - started
                try:
                    messages = await sub.fetch(50, timeout=0.2)
                except (nats.errors.TimeoutError, TimeoutError):
                    continue
                for msg in messages:
                    event = events_pb2.JobEvent()
                    event.ParseFromString(msg.data)
                    await msg.ack()
                    run.events.append(event)
                if run.kinds and run.kinds[-1] in TERMINAL:
                    break
        run.peak_rss = sampler.peak
        run.seconds = time.monotonic() - started
    finally:
        await nc.close()
    return run


def run_job(
    worker: Worker, job: events_pb2.DispatchJob, timeout: float = 60.0, cancel_at_percent: int | None = None
) -> Run:
    """Dispatch `job`, collect its events until a final one, and the worker tree's peak memory meanwhile.

    With `cancel_at_percent`, the job is cancelled once its progress reaches that percentage.
    """
    return asyncio.run(_run(worker, job, timeout, cancel_at_percent))
