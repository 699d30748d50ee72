"""`python -m bench [--only NAME ...] [--quick]`: start a local stack, measure, print one table."""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from bench import create, dispatch, engines, fanout, listing, memory
from bench.context import BenchContext, RunSize
from bench.harness import BenchStack
from bench.load import wrk_available
from bench.report import Figure, render_markdown, render_text
from services.common.collector import settle_garbage_collector

Section = Callable[[BenchContext], Awaitable[list[Figure]]]

# In the order they run: the sections that load the services first, the million-row table last.
SECTIONS: dict[str, Section] = {
    "memory": memory.run,
    "create": create.run,
    "dispatch": dispatch.run,
    "fanout": fanout.run,
    "listing": listing.run,
    "engines": engines.run,
}


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--only", action="append", choices=list(SECTIONS), help="run only this section (repeatable)")
    parser.add_argument("--quick", action="store_true", help="smaller runs: a smoke test of every section")
    parser.add_argument("--markdown", type=Path, help="also write the table as Markdown to this file")
    parser.add_argument("--state-dir", type=Path, help="keep the stack's data and logs here (default: a temp dir)")
    return parser.parse_args(argv)


async def _measure(ctx: BenchContext, names: list[str]) -> list[Figure]:
    figures: list[Figure] = []
    for name in names:
        started = time.monotonic()
        print(f"-- {name} ...", file=sys.stderr, flush=True)
        figures += await SECTIONS[name](ctx)
        print(f"-- {name} done in {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    return figures


def main(argv: list[str] | None = None) -> int:
    """Run the chosen sections against a fresh stack; 0 when every target passed."""
    args = _arguments(sys.argv[1:] if argv is None else argv)
    if not wrk_available():
        print("wrk is missing: install the Debian package wrk (make bench does)", file=sys.stderr)
        return 2
    names = args.only or list(SECTIONS)
    size = RunSize.quick() if args.quick else RunSize.full()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="aiorch-bench-") as temporary:
        stack = BenchStack(args.state_dir or Path(temporary))
        print("starting the stack ...", file=sys.stderr, flush=True)
        stack.start()
        try:
            # The watchers and load generators in this process collect garbage the way the services do.
            settle_garbage_collector()
            figures = asyncio.run(_measure(BenchContext(stack, size), names))
        finally:
            stack.stop()
    print(render_text(figures))
    print(f"\n{len(figures)} figures in {time.monotonic() - started:.0f} s; {'quick' if args.quick else 'full'} run")
    if args.markdown:
        args.markdown.write_text(render_markdown(figures) + "\n")
    return 0 if all(f.passed is not False for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
