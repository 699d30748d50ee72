"""Section `dispatch`: from CreateJob returning to a worker holding the message.

The worker stamps its JobStarted event when it took the message; the bench hears every event on
NATS and subtracts the moment CreateJob returned (one machine, one clock). At most eight jobs are
unfinished at a time, under the workers' sixteen slots, so the figure is the path's latency, not a queue's.
Baselines: raw JetStream publish -> pull-consumer receive, and one raw Postgres insert-and-commit.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass

import nats
import psycopg2
from aiorch.jobs.v1 import events_pb2, jobs_pb2_grpc
from grpc import aio
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig, StreamConfig
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bench.context import BenchContext
from bench.report import Figure, judged
from bench.stats import Latency
from services.common import messaging
from services.common.db import make_engine

WORKERS = 2
# Jobs created at once, and jobs created but not finished: under the workers' 16 slots (2 workers x
# AIORCH_WORKER_CONCURRENCY 8), so the figure is the path's latency, never a queue's wait.
CREATORS = 2
IN_FLIGHT = 8
BASELINE_SAMPLES = 500
# The issue's target: dispatch p50 within 3x the sum of the raw parts' p50s.
DISPATCH_FACTOR = 3
STARTED_TIMEOUT_SECONDS = 60
RAW_STREAM = "BENCH_RAW"
RAW_SUBJECT = "bench.raw"


async def _drain_backlog(ctx: BenchContext) -> None:
    """Earlier sections left PENDING jobs queued: let the outbox empty, then purge the work queue."""
    engine = make_engine(ctx.stack.endpoints.database_url, 1)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with engine.connect() as connection:
                if not connection.execute(text("SELECT count(*) FROM jobs.outbox")).scalar_one():
                    break
            await asyncio.sleep(0.2)
    finally:
        engine.dispose()
    nc = await nats.connect(ctx.stack.endpoints.nats_url, **ctx.stack.endpoints.nats_login("admin"))
    try:
        await nc.jetstream().purge_stream(messaging.DISPATCH_STREAM)
    finally:
        await nc.close()


@dataclass(frozen=True)
class DispatchTimes:
    """Per job, seconds from CreateJob's return to its JobStarted stamp, split where the relay published it."""

    total: list[float]
    # Return -> the dispatch message heard on NATS (the relay's share; below 0 where it beat the return).
    relay: list[float]
    # Dispatch message heard -> JobStarted (the worker's share: its pull, the cancel-flag read, the stamp).
    worker: list[float]


async def dispatch_latencies(ctx: BenchContext, jobs: int) -> DispatchTimes:
    """Each job's CreateJob return, dispatch message on NATS and JobStarted stamp, as seconds between them."""
    returned: dict[str, float] = {}
    published: dict[str, float] = {}
    started: dict[str, float] = {}
    all_started = asyncio.Event()
    # Jobs created and not yet finished stay under the workers' slots, so none waits in the queue.
    in_flight = asyncio.Semaphore(IN_FLIGHT)

    async def on_event(message: Msg) -> None:
        event = events_pb2.JobEvent.FromString(message.data)
        kind = event.WhichOneof("kind")
        if kind == "started" and event.job_id not in started:
            started[event.job_id] = event.at.ToNanoseconds() / 1e9
            if len(started) >= jobs:
                all_started.set()
        elif kind in ("completed", "failed", "cancelled"):
            in_flight.release()

    async def on_dispatch(message: Msg) -> None:
        # A core subscription hears every publish without taking it from the workers' queue.
        published.setdefault(events_pb2.DispatchJob.FromString(message.data).job_id, time.time())

    nc = await nats.connect(ctx.stack.endpoints.nats_url, **ctx.stack.endpoints.nats_login("admin"))
    try:
        await nc.subscribe(messaging.events_subject("*"), cb=on_event)
        await nc.subscribe(messaging.dispatch_subject("*"), cb=on_dispatch)
        async with aio.insecure_channel(ctx.stack.endpoints.grpc["jobs"]) as channel:
            stub = jobs_pb2_grpc.JobServiceStub(channel)
            request = ctx.tts_request("Go.")
            remaining = iter(range(jobs))

            async def creator() -> None:
                for _ in remaining:
                    await asyncio.wait_for(in_flight.acquire(), STARTED_TIMEOUT_SECONDS)
                    job = await stub.CreateJob(request, metadata=ctx.stack.editor.metadata, timeout=30)
                    returned[job.id] = time.time()

            await asyncio.gather(*(creator() for _ in range(CREATORS)))
        await asyncio.wait_for(all_started.wait(), STARTED_TIMEOUT_SECONDS)
    finally:
        await nc.close()
    heard = [job_id for job_id in returned if job_id in published]
    return DispatchTimes(
        total=[started[job_id] - at for job_id, at in returned.items()],
        relay=[published[job_id] - returned[job_id] for job_id in heard],
        worker=[started[job_id] - published[job_id] for job_id in heard],
    )


async def jetstream_latencies(ctx: BenchContext, samples: int) -> list[float]:
    """Publish -> receive by a pull consumer already waiting, as a worker waits."""
    nc = await nats.connect(ctx.stack.endpoints.nats_url, **ctx.stack.endpoints.nats_login("admin"))
    js = nc.jetstream()
    try:
        await js.add_stream(StreamConfig(name=RAW_STREAM, subjects=[RAW_SUBJECT]))
        await js.add_consumer(RAW_STREAM, ConsumerConfig(durable_name="bench"))
        subscription = await js.pull_subscribe_bind(durable="bench", stream=RAW_STREAM)
        latencies: list[float] = []
        for _ in range(samples):
            waiting = asyncio.ensure_future(subscription.fetch(1, timeout=5))
            await asyncio.sleep(0.002)  # the pull request reaches the server before the publish
            sent = time.perf_counter()
            await js.publish(RAW_SUBJECT, uuid.uuid4().bytes)
            messages = await waiting
            latencies.append(time.perf_counter() - sent)
            await messages[0].ack()
        await js.delete_stream(RAW_STREAM)
        return latencies
    finally:
        await nc.close()


def insert_commit_latencies(ctx: BenchContext, samples: int) -> list[float]:
    """One INSERT and COMMIT on a psycopg2 connection to the same server."""
    url = make_url(ctx.stack.endpoints.database_url)
    connection = psycopg2.connect(
        host=url.host, port=url.port, user=url.username, password=url.password, dbname=url.database
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute("CREATE TEMPORARY TABLE bench_insert (id uuid PRIMARY KEY, body bytea)")
        connection.commit()
        latencies: list[float] = []
        for _ in range(samples):
            sent = time.perf_counter()
            with connection.cursor() as cursor:
                cursor.execute("INSERT INTO bench_insert VALUES (%s, %s)", (str(uuid.uuid4()), b"x" * 64))
            connection.commit()
            latencies.append(time.perf_counter() - sent)
        return latencies
    finally:
        connection.close()


async def run(ctx: BenchContext) -> list[Figure]:
    """Dispatch latency over many jobs against the raw JetStream and Postgres round trips."""
    await _drain_backlog(ctx)
    workers = ctx.stack.start_workers(WORKERS)
    try:
        await asyncio.sleep(3)  # the workers' consumers are bound
        await dispatch_latencies(ctx, 20)  # warm-up: engines loaded, connections open
        times = await dispatch_latencies(ctx, ctx.size.dispatch_jobs)
        dispatch = Latency.of_seconds(times.total)
        relay, worker = Latency.of_seconds(times.relay), Latency.of_seconds(times.worker)
    finally:
        ctx.stack.stop_workers(workers)
    samples = min(BASELINE_SAMPLES, ctx.size.dispatch_jobs)
    jetstream = Latency.of_seconds(await jetstream_latencies(ctx, samples))
    insert = Latency.of_seconds(await asyncio.to_thread(insert_commit_latencies, ctx, samples))
    raw = jetstream.p50_ms + insert.p50_ms
    return [
        Figure("dispatch", "raw JetStream publish->receive p50", jetstream.p50_ms, "ms"),
        Figure("dispatch", "raw JetStream publish->receive p99", jetstream.p99_ms, "ms"),
        Figure("dispatch", "raw Postgres insert+commit p50", insert.p50_ms, "ms"),
        Figure("dispatch", "raw Postgres insert+commit p99", insert.p99_ms, "ms"),
        Figure("dispatch", "create returned->dispatch published p50", relay.p50_ms, "ms"),
        Figure("dispatch", "dispatch published->worker started p50", worker.p50_ms, "ms"),
        Figure("dispatch", "dispatch published->worker started p99", worker.p99_ms, "ms"),
        judged(
            "dispatch",
            f"create->worker p50 ({dispatch.count} jobs)",
            dispatch.p50_ms,
            "ms",
            "raw JS+PG p50",
            raw,
            at_most=DISPATCH_FACTOR,
        ),
        judged(
            "dispatch",
            f"create->worker p99 ({dispatch.count} jobs)",
            dispatch.p99_ms,
            "ms",
            "raw JS+PG p99",
            jetstream.p99_ms + insert.p99_ms,
        ),
    ]
