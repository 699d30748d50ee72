"""Section `fanout`: gRPC and SSE watchers of one job on one jobs replica.

Latency runs from the moment a progress change was stored (the job's updated_at, set in the
transaction) to each watcher having it, measured in this process, which also parses every message:
at 1,200 watchers the client's own work is part of the tail. Memory per watcher is the jobs
service's resident growth with every stream open and idle, divided by the streams. CPU per delivery
(the jobs service, the gateway, this process) is each one's CPU time over the progress changes,
divided by the deliveries: the cost a change pays per watcher, which bounds the tail on two cores.
The section first waits until the jobs service has applied the worker events earlier sections left.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import cast

import httpx
import nats
import psutil
from aiorch.jobs.v1 import jobs_pb2, jobs_pb2_grpc
from grpc import aio

from bench.context import BenchContext
from bench.harness import cpu_seconds, cpu_spent, resident_bytes
from bench.report import Figure, judged
from bench.stats import Latency
from services.common import messaging

STREAMS_PER_CHANNEL = 100
EVENT_TIMEOUT_SECONDS = 30
INTAKE_QUIET_TIMEOUT_SECONDS = 120
# The targets.
P99_TARGET_MS = 100
MEMORY_TARGET_KB = 50


class Watchers:
    """Every watcher's arrivals: progress value -> seconds from stored to received, per watcher."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.snapshots = 0
        self.latencies: dict[int, list[float]] = {}
        self._changed = asyncio.Event()

    def snapshot(self) -> None:
        self.snapshots += 1
        self._changed.set()

    def arrived(self, progress: int, stored_at: float) -> None:
        self.latencies.setdefault(progress, []).append(time.time() - stored_at)
        self._changed.set()

    def count(self, progress: int | None) -> int:
        """Watchers with their snapshot (progress None), or with `progress`."""
        return self.snapshots if progress is None else len(self.latencies.get(progress, []))

    async def until(self, tasks: list[asyncio.Task[None]], progress: int | None = None) -> None:
        """Wait until every watcher has its snapshot, or every watcher has `progress`; fail on a dead watcher."""
        try:
            async with asyncio.timeout(EVENT_TIMEOUT_SECONDS):
                while self.count(progress) < self.expected:
                    _raise_first_failure(tasks)
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            _raise_first_failure(tasks)
            what = "their snapshot" if progress is None else f"progress {progress}"
            raise RuntimeError(
                f"{self.count(progress)} of {self.expected} watchers had {what} after {EVENT_TIMEOUT_SECONDS} s"
            ) from None


def _raise_first_failure(tasks: list[asyncio.Task[None]]) -> None:
    failed = [task for task in tasks if task.done() and not task.cancelled() and task.exception() is not None]
    if failed:
        raise RuntimeError(f"{len(failed)} watchers failed; the first: {failed[0].exception()!r}")


async def _grpc_watcher(stub: jobs_pb2_grpc.JobServiceStub, ctx: BenchContext, job_id: str, seen: Watchers) -> None:
    # On an aio channel the stub's stream is async; the generated stubs are typed for the sync one.
    stream = cast(
        AsyncIterator[jobs_pb2.JobUpdate],
        stub.WatchJob(jobs_pb2.WatchJobRequest(id=job_id), metadata=ctx.stack.editor.metadata),
    )
    first = True
    async for update in stream:
        if first:
            seen.snapshot()
            first = False
        elif update.job.progress:
            seen.arrived(update.job.progress, update.job.updated_at.ToNanoseconds() / 1e9)


async def _sse_watcher(http: httpx.AsyncClient, ctx: BenchContext, job_id: str, seen: Watchers) -> None:
    async with http.stream("GET", f"/api/jobs/{job_id}/watch", headers=ctx.stack.editor.headers) as reply:
        reply.raise_for_status()
        first = True
        async for line in reply.aiter_lines():
            if not line.startswith("data: "):
                continue
            job = json.loads(line.removeprefix("data: "))["job"]
            if first:
                seen.snapshot()
                first = False
            elif job["progress"]:
                seen.arrived(job["progress"], datetime.fromisoformat(job["updated_at"]).timestamp())


def _gateway_retries(ctx: BenchContext) -> int:
    """Requests the bench gateway sent to the jobs service again (watch opens it answered CANCELLED)."""
    stats = httpx.get(f"http://127.0.0.1:{ctx.stack.gateway_admin_port}/stats?filter=^cluster.jobs.upstream_rq_retry$")
    return int(stats.text.split(":")[1]) if ":" in stats.text else 0


async def _intake_caught_up(ctx: BenchContext) -> None:
    """Wait until the jobs service applied every worker event earlier sections left (the dispatch
    section's thousands of jobs): applying them would otherwise share the cores with the fan-out."""
    nc = await nats.connect(ctx.stack.endpoints.nats_url, **ctx.stack.endpoints.nats_login("admin"))
    try:
        js = nc.jetstream()
        async with asyncio.timeout(INTAKE_QUIET_TIMEOUT_SECONDS):
            while True:
                info = await js.consumer_info(messaging.EVENTS_STREAM, messaging.EVENTS_CONSUMER)
                if not info.num_pending and not info.num_ack_pending:
                    return
                await asyncio.sleep(0.2)
    finally:
        await nc.close()


async def run(ctx: BenchContext) -> list[Figure]:
    """Open every stream, measure memory, then store progress changes one by one and time their arrival."""
    grpc_count, sse_count = ctx.size.fanout_grpc, ctx.size.fanout_sse
    processes = ctx.stack.processes()
    jobs_process = processes["jobs"]
    # Where the work of a delivery goes: the jobs service writes, the gateway transcodes the SSE
    # streams, this process receives and parses every copy.
    measured = {
        "jobs": jobs_process,
        "gateway": processes["bench-envoy"],
        "watchers (this process)": psutil.Process(os.getpid()),
    }
    channels = [
        aio.insecure_channel(ctx.stack.endpoints.grpc["jobs"]) for _ in range(-(-grpc_count // STREAMS_PER_CHANNEL))
    ]
    limits = httpx.Limits(max_connections=sse_count + 10, max_keepalive_connections=sse_count + 10)
    http = httpx.AsyncClient(base_url=ctx.stack.gateway_url, limits=limits, timeout=httpx.Timeout(60, read=None))
    tasks: list[asyncio.Task[None]] = []
    try:
        await _intake_caught_up(ctx)
        job = await jobs_pb2_grpc.JobServiceStub(channels[0]).CreateJob(
            ctx.tts_request(), metadata=ctx.stack.editor.metadata
        )
        admin = jobs_pb2_grpc.JobServiceStub(channels[0])
        await asyncio.sleep(1)
        before = resident_bytes(jobs_process)
        seen = Watchers(grpc_count + sse_count)
        stubs = [jobs_pb2_grpc.JobServiceStub(channel) for channel in channels]
        tasks += [
            asyncio.create_task(_grpc_watcher(stubs[i // STREAMS_PER_CHANNEL], ctx, job.id, seen))
            for i in range(grpc_count)
        ]
        tasks += [asyncio.create_task(_sse_watcher(http, ctx, job.id, seen)) for _ in range(sse_count)]
        await seen.until(tasks)
        await asyncio.sleep(1)
        per_watcher_kb = (resident_bytes(jobs_process) - before) / (grpc_count + sse_count) / 1024
        cpu_before = cpu_seconds(measured)
        for progress in range(1, ctx.size.fanout_events + 1):
            await admin.UpdateProgress(
                jobs_pb2.UpdateProgressRequest(id=job.id, progress=progress), metadata=ctx.stack.admin.metadata
            )
            await seen.until(tasks, progress=progress)
            await asyncio.sleep(0.2)
        _raise_first_failure(tasks)
        spent = cpu_spent(cpu_before, cpu_seconds(measured))
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        await http.aclose()
        for channel in channels:
            await channel.close(None)
    latency = Latency.of_seconds([s for samples in seen.latencies.values() for s in samples])
    cpu_figures = [
        Figure("fanout", f"CPU per delivery: {name}", seconds / latency.count * 1e6, "us")
        for name, seconds in spent.items()
        if latency.count
    ]
    watchers = f"{grpc_count} gRPC + {sse_count} SSE"
    return [
        Figure("fanout", "SSE opens the gateway retried (CANCELLED by the service)", _gateway_retries(ctx), "requests"),
        Figure("fanout", f"stored->every watcher p50 ({watchers})", latency.p50_ms, "ms"),
        judged(
            "fanout",
            f"stored->every watcher p99 ({latency.count} deliveries)",
            latency.p99_ms,
            "ms",
            "target",
            P99_TARGET_MS,
            at_most=1,
        ),
        judged(
            "fanout", "resident memory per idle watcher", per_watcher_kb, "KB", "target", MEMORY_TARGET_KB, at_most=1
        ),
        *cpu_figures,
    ]
