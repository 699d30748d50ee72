"""`python -m bench.profile [SERVICE ...]`: py-spy profiles of services while gRPC CreateJob runs at 16 in flight.

Prints, per service, the functions that hold the most samples (own time and with callees), from
py-spy's collapsed stacks; `--out DIR` keeps the raw files (flamegraph input).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from bench import create
from bench.context import BenchContext, RunSize
from bench.harness import BenchStack

TOP = 25


def top_frames(collapsed: str, limit: int = TOP) -> tuple[list[tuple[str, int]], list[tuple[str, int]], int]:
    """(own samples, inclusive samples, total) per frame, from py-spy's raw (collapsed) output."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    return own.most_common(limit), inclusive.most_common(limit), total


def _print(name: str, collapsed: str) -> None:
    own, inclusive, total = top_frames(collapsed)
    print(f"\n== {name}: {total} samples")
    for title, rows in (("own time", own), ("with callees", inclusive)):
        print(f"-- {title}")
        for frame, count in rows:
            print(f"{100 * count / max(total, 1):5.1f}%  {frame}")


async def _load(ctx: BenchContext, seconds: float) -> None:
    await create.grpc_create(ctx, 16, seconds)


def main() -> int:
    """Start a stack, profile the chosen services under create load, print their hot frames."""
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("services", nargs="*", default=["jobs", "projects"])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--gil", action="store_true", help="sample only the thread holding the GIL: CPU in Python, not waits"
    )
    args = parser.parse_args()
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    with tempfile.TemporaryDirectory(prefix="aiorch-profile-") as temporary:
        out = args.out or Path(temporary)
        out.mkdir(parents=True, exist_ok=True)
        stack = BenchStack(Path(temporary) / "stack")
        stack.start()
        try:
            ctx = BenchContext(stack, RunSize.quick())
            asyncio.run(_load(ctx, 1))
            processes = stack.processes()
            recorders = [
                subprocess.Popen(
                    [
                        py_spy,
                        "record",
                        "--pid",
                        str(processes[name].pid),
                        "--duration",
                        str(round(args.seconds)),
                        "--rate",
                        "200",
                        "--threads",
                        "--format",
                        "raw",
                        "--output",
                        str(out / f"{name}.txt"),
                        "--nonblocking",
                        *(["--gil"] if args.gil else []),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                for name in args.services
            ]
            asyncio.run(_load(ctx, args.seconds))
            for recorder in recorders:
                recorder.wait(timeout=args.seconds + 30)
        finally:
            stack.stop()
        for name in args.services:
            path = out / f"{name}.txt"
            if path.exists():
                _print(name, path.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
