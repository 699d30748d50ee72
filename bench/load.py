"""Closed-loop load: N clients each send the next request when the last one answered.

REST load comes from wrk (C, so the generator takes little of the two cores); gRPC load from grpc.aio
in this process. Either way the generator shares the machine with what it measures: compare figures
only with the baseline measured the same way in the same run.
"""

from __future__ import annotations

import asyncio
import json
import math
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from bench.harness import run_checked
from bench.stats import Latency

# wrk reports through this hook: its own summary, with latencies in microseconds.
WRK_REPORT = """
done = function(summary, latency, requests)
  local failed = summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout
  io.write(string.format('BENCH {"requests": %d, "seconds": %f, "p50_us": %d, "p99_us": %d, "failed": %d}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50), latency:percentile(99), failed))
end
"""


@dataclass(frozen=True)
class LoadResult:
    """Throughput and latency of one closed-loop run."""

    requests: int
    seconds: float
    latency: Latency

    @property
    def per_second(self) -> float:
        """Completed requests per second."""
        return self.requests / self.seconds if self.seconds > 0 else math.nan


def wrk_available() -> bool:
    """Whether Debian's wrk is installed (the Makefile installs it)."""
    return shutil.which("wrk") is not None


def wrk_post(url: str, body: str, headers: dict[str, str], connections: int, seconds: float) -> LoadResult:
    """POST `body` to `url` from `connections` keep-alive connections for `seconds`; any failure raises."""
    lines = ['wrk.method = "POST"', f"wrk.body = {_lua_string(body)}"]
    lines += [f"wrk.headers[ {_lua_string(k)} ] = {_lua_string(v)}" for k, v in headers.items()]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write("\n".join(lines) + WRK_REPORT)
    try:
        out = run_checked(
            [
                "wrk",
                f"-t{min(2, connections)}",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                "--timeout",
                "10s",
                "-s",
                script.name,
                url,
            ],
            timeout=seconds + 60,
        )
    finally:
        Path(script.name).unlink()
    reports = [line.removeprefix("BENCH ") for line in out.splitlines() if line.startswith("BENCH ")]
    if not reports:
        raise RuntimeError(f"wrk gave no report: {out[-2000:]}")
    report = json.loads(reports[0])
    if report["failed"]:
        raise RuntimeError(f"{report['failed']} of {report['requests']} requests to {url} failed")
    return LoadResult(
        report["requests"],
        report["seconds"],
        Latency(report["p50_us"] / 1000, report["p99_us"] / 1000, report["requests"]),
    )


def _lua_string(text: str) -> str:
    # A Lua long bracket string takes the text verbatim (JSON bodies and tokens hold no "]==]").
    if "]==]" in text:
        raise ValueError("text cannot be quoted for Lua")
    return f"[==[{text}]==]"


async def closed_loop(call: Callable[[], Awaitable[object]], concurrency: int, seconds: float) -> LoadResult:
    """Run `call` from `concurrency` tasks for `seconds`; every call must succeed."""
    samples: list[float] = []
    started = time.perf_counter()
    deadline = started + seconds

    async def client() -> None:
        while time.perf_counter() < deadline:
            before = time.perf_counter()
            await call()
            samples.append(time.perf_counter() - before)

    await asyncio.gather(*(client() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return LoadResult(len(samples), elapsed, Latency.of_seconds(samples))
