"""Section `create`: job creation over REST through Envoy and over gRPC direct, against an echo baseline.

At the highest concurrency it also reports each process's CPU milliseconds per call (its CPU time over
the run divided by the calls): on two cores, the sum over the processes bounds the throughput.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from functools import partial

import psutil
from aiorch.jobs.v1 import jobs_pb2, jobs_pb2_grpc
from grpc import aio

from bench.context import BenchContext
from bench.echo import METHOD as ECHO_METHOD
from bench.echo import REST_PATH as ECHO_PATH
from bench.echo import echo_message
from bench.harness import cpu_seconds, cpu_spent
from bench.load import LoadResult, closed_loop, wrk_post
from bench.report import Figure, judged

CONCURRENCY = (1, 16, 64)
# The target: at 64 in flight, creating a job keeps at least 40 % of the echo's throughput.
THROUGHPUT_SHARE = 0.4
ECHO_TEXT = "Benchmark."
# Processes whose CPU per call is reported at the highest concurrency: where a create's work goes.
CPU_SHARES = ("jobs", "projects", "auth", "postgres", "nats", "bench-envoy", "echo", "bench")
# Below this a process had no part in the call (its own timers and polls over the run).
CPU_SHOWN_MS = 0.05


def _figures(path: str, concurrency: int, measured: LoadResult, baseline: LoadResult) -> list[Figure]:
    name = f"{path} create c={concurrency}"
    target = THROUGHPUT_SHARE if concurrency == max(CONCURRENCY) else None
    return [
        judged(
            "create", f"{name} throughput", measured.per_second, "req/s", "echo", baseline.per_second, at_least=target
        ),
        judged("create", f"{name} p50", measured.latency.p50_ms, "ms", "echo", baseline.latency.p50_ms),
        judged("create", f"{name} p99", measured.latency.p99_ms, "ms", "echo", baseline.latency.p99_ms),
    ]


def rest_create(ctx: BenchContext, concurrency: int, seconds: float) -> LoadResult:
    """POST /api/jobs/ through the gateway."""
    headers = {"content-type": "application/json", **ctx.stack.editor.headers}
    return wrk_post(f"{ctx.stack.gateway_url}/api/jobs/", ctx.tts_json(), headers, concurrency, seconds)


def rest_echo(ctx: BenchContext, concurrency: int, seconds: float) -> LoadResult:
    """POST /bench/echo through the same gateway, with the same token for its JWT filter to check."""
    headers = {"content-type": "application/json", **ctx.stack.editor.headers}
    body = f'{{"text": "{ECHO_TEXT}"}}'
    return wrk_post(f"{ctx.stack.gateway_url}{ECHO_PATH}", body, headers, concurrency, seconds)


async def grpc_create(ctx: BenchContext, concurrency: int, seconds: float) -> LoadResult:
    """CreateJob straight to the jobs service."""
    async with aio.insecure_channel(ctx.stack.endpoints.grpc["jobs"]) as channel:
        stub = jobs_pb2_grpc.JobServiceStub(channel)
        request = ctx.tts_request()
        metadata = ctx.stack.editor.metadata

        async def call() -> jobs_pb2.Job:
            return await stub.CreateJob(request, metadata=metadata, timeout=30)

        return await closed_loop(call, concurrency, seconds)


async def grpc_echo(ctx: BenchContext, concurrency: int, seconds: float) -> LoadResult:
    """The echo, straight to its server, with the same metadata."""
    async with aio.insecure_channel(ctx.stack.echo_address) as channel:
        echo = channel.unary_unary(ECHO_METHOD, request_serializer=bytes, response_deserializer=bytes)
        request = echo_message(ECHO_TEXT)
        metadata = ctx.stack.editor.metadata

        async def call() -> object:
            return await echo(request, metadata=metadata, timeout=30)

        return await closed_loop(call, concurrency, seconds)


class CpuPerCall:
    """Runs loads and records, per process, the CPU milliseconds each call cost (total CPU / calls)."""

    def __init__(self, ctx: BenchContext) -> None:
        self._processes = {**ctx.stack.processes(), "bench": psutil.Process(os.getpid())}
        self.figures: list[Figure] = []

    async def measure(self, label: str, keep: bool, load: Callable[[], Awaitable[LoadResult]]) -> LoadResult:
        """Run `load`; with `keep`, add a figure per process of `CPU_SHARES` that did work."""
        before = cpu_seconds(self._processes)
        result = await load()
        spent = cpu_spent(before, cpu_seconds(self._processes))
        # The readings also cover the load's start and end (a connection, wrk's start): a slight overcount.
        if keep and result.requests > 0:
            for name in CPU_SHARES:
                ms = spent.get(name, 0.0) / result.requests * 1000
                if ms >= CPU_SHOWN_MS:
                    self.figures.append(Figure("create", f"{label} CPU per call: {name}", ms, "ms"))
        return result


async def run(ctx: BenchContext) -> list[Figure]:
    """REST and gRPC create against REST and gRPC echo at each concurrency."""
    seconds = ctx.size.load_seconds
    # Warm every path once: connections, pools, Envoy's clusters.
    rest_echo(ctx, 4, 1)
    rest_create(ctx, 4, 1)
    await grpc_echo(ctx, 4, 1)
    await grpc_create(ctx, 4, 1)
    figures: list[Figure] = []
    cpu = CpuPerCall(ctx)
    for concurrency in CONCURRENCY:
        keep = concurrency == max(CONCURRENCY)
        measured = await cpu.measure(
            f"REST create c={concurrency}", keep, partial(asyncio.to_thread, rest_create, ctx, concurrency, seconds)
        )
        baseline = await cpu.measure(
            f"REST echo c={concurrency}", keep, partial(asyncio.to_thread, rest_echo, ctx, concurrency, seconds)
        )
        figures += _figures("REST", concurrency, measured, baseline)
    for concurrency in CONCURRENCY:
        keep = concurrency == max(CONCURRENCY)
        measured = await cpu.measure(
            f"gRPC create c={concurrency}", keep, partial(grpc_create, ctx, concurrency, seconds)
        )
        baseline = await cpu.measure(f"gRPC echo c={concurrency}", keep, partial(grpc_echo, ctx, concurrency, seconds))
        figures += _figures("gRPC", concurrency, measured, baseline)
    return figures + cpu.figures
