"""Section `memory`: resident memory of every process, idle and under the create load of section `create`."""

from __future__ import annotations

import asyncio
import threading
import time

from bench import create
from bench.context import BenchContext
from bench.harness import BenchStack, resident_bytes
from bench.report import Figure, judged

MIB = 1024 * 1024
SAMPLE_SECONDS = 0.25


def snapshot(stack: BenchStack) -> dict[str, int]:
    """Resident bytes of every supervised process now."""
    return {name: resident_bytes(process) for name, process in stack.processes().items()}


class PeakSampler:
    """Samples every process's resident memory in a thread and keeps each one's peak."""

    def __init__(self, stack: BenchStack) -> None:
        self._stack = stack
        self._stop = threading.Event()
        self.peaks: dict[str, int] = {}
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for name, rss in snapshot(self._stack).items():
                self.peaks[name] = max(self.peaks.get(name, 0), rss)
            self._stop.wait(SAMPLE_SECONDS)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


async def run(ctx: BenchContext) -> list[Figure]:
    """Idle memory, then the peak while REST and gRPC creates run at 64 in flight."""
    time.sleep(1)
    idle = snapshot(ctx.stack)
    with PeakSampler(ctx.stack) as sampler:
        await asyncio.to_thread(create.rest_create, ctx, 64, ctx.size.load_seconds)
        await create.grpc_create(ctx, 64, ctx.size.load_seconds)
    return [
        judged(
            "memory", f"{name} RSS under create load", sampler.peaks.get(name, 0) / MIB, "MiB", "idle", idle[name] / MIB
        )
        for name in sorted(idle)
    ]
