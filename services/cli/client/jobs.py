"""`aiorch jobs ...`: list, read, cancel, retry, delete, watch, read logs and download jobs."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from services.cli.client import submit
from services.cli.client.errors import reported
from services.cli.client.options import DEFAULT_SERVER, OutputOption, PageSizeOption, PageTokenOption, ServerOption
from services.cli.client.output import OutputFormat, print_done, print_json, print_page, print_record
from services.common import job_types

if TYPE_CHECKING:
    from google.protobuf.timestamp_pb2 import Timestamp

app = typer.Typer(help="Jobs: submit, list, get, watch, logs, download, cancel, retry, delete.", no_args_is_help=True)
app.add_typer(submit.app, name="submit")


# The API's names of job states (protos/aiorch/jobs/v1/types.proto), spelt out here; a unit test keeps
# them equal. The job types come from the registry (services/common/job_types.py).
class JobStateName(StrEnum):
    """The `--status` choices."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


# Accepted for --created-after/--created-before; a time without an offset is local time.
TIME_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d %H:%M:%S"]
LIST_COLUMNS = ("id", "type", "status", "progress", "name", "project_id", "created_at")

JobId = Annotated[str, typer.Argument(help="Job id.", show_default=False)]
TimeOption = Annotated[datetime | None, typer.Option(formats=TIME_FORMATS, show_default=False)]


def timestamp(moment: datetime | None) -> Timestamp | None:
    if moment is None:
        return None
    from google.protobuf.timestamp_pb2 import Timestamp  # noqa: PLC0415 - keeps `aiorch --help` fast

    stamp = Timestamp()
    stamp.FromDatetime(moment.astimezone())
    return stamp


def _job_type_name(text: str) -> str:
    # A ValueError (UnknownJobType lists the valid names) becomes click's "Invalid value for '--type'".
    return job_types.get(text).name


@app.command("list")
def list_jobs(
    project: Annotated[str, typer.Option("--project", "-p", help="Only this project's jobs.")] = "",
    job_type: Annotated[
        str | None,
        typer.Option("--type", parser=_job_type_name, metavar=f"[{'|'.join(job_types.NAMES)}]", show_default=False),
    ] = None,
    status: Annotated[JobStateName | None, typer.Option(case_sensitive=False, show_default=False)] = None,
    created_after: TimeOption = None,
    created_before: TimeOption = None,
    search: Annotated[str, typer.Option(help="Case-insensitive match on the name.")] = "",
    ordering: Annotated[str, typer.Option(help="created_at, name or status; a leading - for descending.")] = "",
    page_size: PageSizeOption = 0,
    page_token: PageTokenOption = "",
    server: ServerOption = DEFAULT_SERVER,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """List the jobs you may see, newest first."""
    from aiorch.jobs.v1 import jobs_pb2, types_pb2  # noqa: PLC0415

    from services.cli.client.session import Session  # noqa: PLC0415

    request = jobs_pb2.ListJobsRequest(
        project_id=project,
        type=job_types.get(job_type).number if job_type else types_pb2.JOB_TYPE_UNSPECIFIED,
        status=types_pb2.JobState.Value(status.value) if status else types_pb2.JOB_STATE_UNSPECIFIED,
        created_after=timestamp(created_after),
        created_before=timestamp(created_before),
        search=search,
        ordering=ordering,
        page_size=page_size,
        page_token=page_token,
    )
    with reported(), Session.resume(server) as session:
        page = session.unary(session.jobs.ListJobs, request)
        print_page(page, page.jobs, LIST_COLUMNS, output)


@app.command("get")
def get_job(job_id: JobId, server: ServerOption = DEFAULT_SERVER, output: OutputOption = OutputFormat.TABLE) -> None:
    """Show a job."""
    from aiorch.jobs.v1 import jobs_pb2  # noqa: PLC0415

    from services.cli.client.session import Session  # noqa: PLC0415

    with reported(), Session.resume(server) as session:
        print_record(session.unary(session.jobs.GetJob, jobs_pb2.GetJobRequest(id=job_id)), output)


@app.command("cancel")
def cancel_job(job_id: JobId, server: ServerOption = DEFAULT_SERVER, output: OutputOption = OutputFormat.TABLE) -> None:
    """Cancel a job: a pending one never starts, a running one stops at its next checkpoint."""
    from aiorch.jobs.v1 import jobs_pb2  # noqa: PLC0415

    from services.cli.client.session import Session  # noqa: PLC0415

    with reported(), Session.resume(server) as session:
        print_record(session.unary(session.jobs.CancelJob, jobs_pb2.CancelJobRequest(id=job_id)), output)


@app.command("retry")
def retry_job(
    job_id: JobId,
    watch: Annotated[
        bool, typer.Option("--watch", help="Then follow it until it ends (exit code as `watch`).")
    ] = False,
    server: ServerOption = DEFAULT_SERVER,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Run a FAILED or CANCELLED job again as a new attempt."""
    from aiorch.jobs.v1 import jobs_pb2  # noqa: PLC0415

    from services.cli.client.session import Session  # noqa: PLC0415
    from services.cli.client.watch import watch as watch_job  # noqa: PLC0415

    with reported(), Session.resume(server) as session:
        job = session.unary(session.jobs.RetryJob, jobs_pb2.RetryJobRequest(id=job_id))
        if not watch:
            print_record(job, output)
            return
        raise typer.Exit(watch_job(session, job.id, output))


@app.command("delete")
def delete_job(job_id: JobId, server: ServerOption = DEFAULT_SERVER, output: OutputOption = OutputFormat.TABLE) -> None:
    """Delete a job (cancelling it first if it runs) and its files."""
    from aiorch.jobs.v1 import jobs_pb2  # noqa: PLC0415

    from services.cli.client.session import Session  # noqa: PLC0415

    with reported(), Session.resume(server) as session:
        session.unary(session.jobs.DeleteJob, jobs_pb2.DeleteJobRequest(id=job_id))
        print_done(f"deleted job {job_id}", {"id": job_id, "deleted": True}, output)


@app.command("watch")
def watch_job(
    job_id: JobId,
    timeout: Annotated[
        float,
        typer.Option(
            help="Give up after this many seconds (exit code 11); 0 waits as long as it takes.", show_default=False
        ),
    ] = 0,
    server: ServerOption = DEFAULT_SERVER,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Follow a job until it ends: a live progress bar and its log lines (one JSON object per update
    with --output json or when stdout is not a terminal). Exit code 0 COMPLETED, 1 FAILED, 4 CANCELLED."""
    from services.cli.client.session import Session  # noqa: PLC0415
    from services.cli.client.watch import watch  # noqa: PLC0415

    with reported(), Session.resume(server) as session:
        raise typer.Exit(watch(session, job_id, output, timeout or None))


@app.command("logs")
def job_logs(job_id: JobId, server: ServerOption = DEFAULT_SERVER, output: OutputOption = OutputFormat.TABLE) -> None:
    """Print a job's log: the whole log of a COMPLETED job, else the latest lines of its current attempt."""
    from aiorch.jobs.v1 import jobs_pb2, types_pb2  # noqa: PLC0415

    from services.cli.client.session import Session  # noqa: PLC0415

    with reported(), Session.resume(server) as session:
        job = session.unary(session.jobs.GetJob, jobs_pb2.GetJobRequest(id=job_id))
        if job.status == types_pb2.COMPLETED:
            lines = list(session.unary(session.jobs.GetResultForJob, jobs_pb2.GetResultForJobRequest(id=job_id)).logs)
        else:
            # The first message of a watch stream carries the latest lines so far; nothing else does.
            stream = session.stream(session.jobs.WatchJob, jobs_pb2.WatchJobRequest(id=job_id))
            first = next(stream, None)
            stream.close()
            lines = list(first.log_lines) if first is not None else []
        if output is OutputFormat.JSON:
            print_json({"job_id": job_id, "log_lines": lines})
        else:
            for line in lines:
                typer.echo(line)


@app.command("download")
def download(
    job_id: JobId,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Where to write it (a file, a directory, or - for stdout).", show_default=False
        ),
    ] = None,
    file: Annotated[str, typer.Option(help="Which output, e.g. transcript.srt (default: the main one).")] = "",
    server: ServerOption = DEFAULT_SERVER,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Download a COMPLETED job's result file."""
    from dataclasses import asdict  # noqa: PLC0415

    from services.cli.client.session import Session  # noqa: PLC0415
    from services.cli.client.transfer import STDOUT, download_result  # noqa: PLC0415

    with reported(), Session.resume(server) as session:
        done = download_result(session, job_id, file, out)
        if out != STDOUT:
            print_done(f"wrote {done.path} ({done.size} bytes)", asdict(done), output)
