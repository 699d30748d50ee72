"""A watcher that never reads is ended with a clear status, and does not grow the jobs service's memory.

gRPC flow control stops the server's writes once the client's window is full; what is not written waits in
the server. Twenty WatchJobs streams on a client that grants 1 KiB of window and never reads, while 400
updates of 16 KiB each flow (128 MB, were every stream to keep every update), must leave the jobs
process's resident memory nearly where it was, and each stream must end with RESOURCE_EXHAUSTED.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import grpc
from aiorch.jobs.v1 import jobs_pb2, jobs_pb2_grpc

from services.devstack.supervisor import wait_until
from tests.chaos.chaos_stack import Chaos
from tests.figures import Figures
from tests.support import make_project, scraped, tts_job, wait_for

STALLED_STREAMS = 20
UPDATES = 400
UPDATE_BYTES = 16 * 1024
RSS_GROWTH_LIMIT_MIB = 48
# A client that grants the server this little window (and no automatic growth) takes one message at most.
TINY_WINDOW = [("grpc.http2.lookahead_bytes", 1024), ("grpc.http2.bdp_probe", 0)]


def rss_mib(pid: int) -> float:
    """Resident memory of a process, from /proc."""
    match = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    assert match is not None
    return int(match.group(1)) / 1024


def open_streams(metrics_port: int) -> int:
    """Open WatchJobs streams of the jobs service, from its own gauge."""
    return int(scraped(metrics_port, "aiorch_watch_streams_active", kind="jobs"))


def test_watchers_that_never_read_are_ended_without_growing_the_jobs_service(chaos: Chaos) -> None:
    # Given a job whose every change is broadcast, and streams that never read
    editor = chaos.accounts.create("editor")
    project = make_project(chaos.http, editor)
    job = wait_for(chaos.http, editor, tts_job(chaos.http, editor, project["id"], "Hello.")["id"], {"COMPLETED"})
    jobs_pid = chaos.stack.supervisor.process("jobs").pid
    metrics_port = chaos.endpoints.metrics["jobs"]
    address = chaos.endpoints.grpc["jobs"]
    before = open_streams(metrics_port)
    with (
        grpc.insecure_channel(address, options=TINY_WINDOW) as slow_channel,
        grpc.insecure_channel(address) as channel,
    ):
        slow = jobs_pb2_grpc.JobServiceStub(slow_channel)
        streams = [
            slow.WatchJobs(jobs_pb2.WatchJobsRequest(project_id=project["id"]), metadata=editor.metadata, timeout=120)
            for _ in range(STALLED_STREAMS)
        ]
        wait_until(lambda: open_streams(metrics_port) >= before + STALLED_STREAMS, 30, "the stalled streams")
        baseline = peak = rss_mib(jobs_pid)

        # When many large updates flow to them
        stub = jobs_pb2_grpc.JobServiceStub(channel)
        started = time.monotonic()
        for n in range(UPDATES):
            # Four-byte characters: 16 KiB of UTF-8 in about 4,100 characters, within the description's limit.
            description = f"{n:04d}" + "\U0001f600" * ((UPDATE_BYTES - 4) // 4)
            stub.UpdateJob(
                jobs_pb2.UpdateJobRequest(id=job["id"], description=description), metadata=editor.metadata, timeout=10
            )
            if n % 25 == 0:
                peak = max(peak, rss_mib(jobs_pid))
        pumped = time.monotonic() - started

        # Then the server ends every stalled stream by itself (its write time limit), and its memory stayed bounded
        wait_until(lambda: open_streams(metrics_port) <= before, 30, "the server to end the stalled streams")
        ended_after = time.monotonic() - started
        peak = max(peak, rss_mib(jobs_pid))
        codes: list[grpc.StatusCode] = []
        details: set[str] = set()
        received = []
        for stream in streams:
            count = 0
            try:
                for _ in stream:
                    count += 1
            except grpc.RpcError as exc:
                codes.append(exc.code())
                details.add(exc.details() or "")
            received.append(count)

    Figures("chaos", "slow_consumer").record(
        stalled_streams=STALLED_STREAMS,
        updates=UPDATES,
        update_kib=UPDATE_BYTES // 1024,
        unbounded_would_hold_mib=STALLED_STREAMS * UPDATES * UPDATE_BYTES // 2**20,
        rss_baseline_mib=round(baseline, 1),
        rss_peak_mib=round(peak, 1),
        rss_growth_mib=round(peak - baseline, 1),
        max_messages_per_stalled_stream=max(received),
        streams_ended_within_s=round(ended_after, 1),
        pump_seconds=round(pumped, 1),
        statuses=sorted({c.name for c in codes}),
    )
    assert codes == [grpc.StatusCode.RESOURCE_EXHAUSTED] * STALLED_STREAMS
    assert all("reconnect" in d for d in details), details
    assert max(received) < UPDATES // 10, "the stalled streams were not stalled"
    assert peak - baseline < RSS_GROWTH_LIMIT_MIB, f"the jobs service grew by {peak - baseline:.1f} MiB"
