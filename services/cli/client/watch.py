"""Following one job's watch stream: a live progress bar and log tail, or one JSON object per update."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

import typer

from services.cli.client.errors import CliError, ExitCode
from services.cli.client.output import OutputFormat, message_dict, print_json

if TYPE_CHECKING:
    from aiorch.jobs.v1 import jobs_pb2

    from services.cli.client.session import Session

# What `jobs watch` exits with for each final state.
FINAL_STATES = {"COMPLETED": ExitCode.OK, "FAILED": ExitCode.ERROR, "CANCELLED": ExitCode.CANCELLED}
# The server ends a stream with UNAVAILABLE when a replica shuts down and RESOURCE_EXHAUSTED when the
# client fell behind; the documented answer is to reconnect (the current state comes again). Through
# the gateway, a replica that dies mid-stream can also surface as INTERNAL or UNKNOWN (a reset stream).
RECONNECT_CODES = ("UNAVAILABLE", "RESOURCE_EXHAUSTED", "INTERNAL", "UNKNOWN")
# How long to keep reconnecting since the last update: long enough for a service restart.
RECONNECT_WINDOW_SECONDS = 60.0


def follow(session: Session, job_id: str, timeout: float | None = None) -> Iterator[jobs_pb2.JobUpdate]:
    """Every update of one job until it reaches a final state, reconnecting for a while when the server
    ends an open stream early; updates older than one already seen are dropped."""
    import grpc  # noqa: PLC0415 - keeps `aiorch --help` fast
    from aiorch.jobs.v1 import jobs_pb2  # noqa: PLC0415

    deadline = time.monotonic() + timeout if timeout else None
    seen_version, attempt, last_update = -1, 0, time.monotonic()
    while True:
        remaining = None if deadline is None else max(deadline - time.monotonic(), 0.001)
        try:
            for update in session.stream(session.jobs.WatchJob, jobs_pb2.WatchJobRequest(id=job_id), remaining):
                attempt, last_update = 0, time.monotonic()
                if update.version <= seen_version:
                    continue
                seen_version = update.version
                yield update
            return
        except grpc.RpcError as exc:
            # Only a stream that was open is resumed; a server that never answered is an error now.
            given_up = time.monotonic() - last_update > RECONNECT_WINDOW_SECONDS
            if seen_version < 0 or exc.code().name not in RECONNECT_CODES or given_up:
                raise
            attempt += 1
            if attempt == 1:
                typer.echo(f"the watch stream ended early ({exc.code().name}); reconnecting", err=True)
            time.sleep(min(0.25 * 2**attempt, 2.0))


def outcome(job: jobs_pb2.Job) -> ExitCode:
    """The exit code for a job in a final state; tells on stderr why it failed or was cancelled."""
    from aiorch.jobs.v1 import types_pb2  # noqa: PLC0415

    state = types_pb2.JobState.Name(job.status)
    if state not in FINAL_STATES:
        raise CliError(f"the watch stream ended while job {job.id} was {state}")
    if state != "COMPLETED":
        typer.echo(f"job {job.id} {state}: {job.error or 'no reason given'}", err=True)
    return FINAL_STATES[state]


class UpdateView(Protocol):
    """Shows a stream of job updates."""

    def show(self, update: jobs_pb2.JobUpdate) -> None:
        """Show one update."""

    def close(self) -> None:
        """The stream is over."""


class JsonLinesView:
    """One JSON object (the JobUpdate) per line, flushed at once, for scripts and pipes."""

    def show(self, update: jobs_pb2.JobUpdate) -> None:
        """Print the update as one line of JSON."""
        print_json(message_dict(update), lines=True)

    def close(self) -> None:
        """Nothing to tidy."""


class ProgressView:
    """A live progress bar with the job's state and message; new log lines scroll above it."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn  # noqa: PLC0415

        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn()
        )
        self.task = self.progress.add_task("connecting", total=100)
        self.progress.start()

    def show(self, update: jobs_pb2.JobUpdate) -> None:
        """Move the bar and print the new log lines."""
        from aiorch.jobs.v1 import types_pb2  # noqa: PLC0415

        job = update.job
        for line in update.log_lines:
            self.progress.console.print(line, markup=False, highlight=False)
        state = types_pb2.JobState.Name(job.status)
        description = f"{state:<9} {job.message}" if job.message else state
        self.progress.update(self.task, completed=job.progress, description=description)

    def close(self) -> None:
        """Leave the last bar on screen."""
        self.progress.stop()


def watch(session: Session, job_id: str, output: OutputFormat, timeout: float | None = None) -> ExitCode:
    """Show a job's updates until it ends; its exit code (0 COMPLETED, 1 FAILED, 4 CANCELLED)."""
    view: UpdateView = ProgressView() if output is OutputFormat.TABLE and sys.stdout.isatty() else JsonLinesView()
    import grpc  # noqa: PLC0415

    last: jobs_pb2.Job | None = None
    try:
        for update in follow(session, job_id, timeout):
            view.show(update)
            last = update.job
    except grpc.RpcError as exc:
        if timeout and exc.code() is grpc.StatusCode.DEADLINE_EXCEEDED:
            raise CliError(f"job {job_id} did not finish within {timeout:g} s", ExitCode.UNAVAILABLE) from exc
        raise
    finally:
        view.close()
    if last is None:
        raise CliError(f"the watch stream of job {job_id} ended without any update")
    return outcome(last)
