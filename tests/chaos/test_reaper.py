"""No job stays RUNNING past its time limit: with every worker gone, the reaper fails the job.

The chaos stack's workers stop a TTS attempt after its time limit and the reaper allows a grace more. Killing every
worker mid-job leaves nobody to take the job over; the reaper must fail it, and when a worker comes back
the job's late redelivery must be called off (its cancel flag) without storing a result. A second jobs
replica runs its own reaper over the same database: the job is failed once, by one of them.
"""

from __future__ import annotations

import signal
import time

import httpx

from services.devstack.supervisor import wait_until
from tests.chaos.chaos_stack import CHAOS_ENV, Chaos
from tests.figures import Figures
from tests.support import long_text, make_project, scraped, stored_results, tts_job, wait_for, worker_names

TIME_LIMIT_SECONDS = int(CHAOS_ENV["AIORCH_WORKER_TIME_LIMITS"].removeprefix("TTS="))
GRACE_SECONDS = int(CHAOS_ENV["AIORCH_REAPER_GRACE_SECONDS"])
REPLICA = "jobs-reaper-2"


def reaps_logged(chaos: Chaos, replica: str, job_id: str) -> int:
    """How often a jobs replica logged reaping the job (its JSON log lines name the reaped ids)."""
    log = chaos.stack.state_dir / "logs" / f"{replica}.log"
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    return sum(1 for line in lines if "failed abandoned jobs" in line and job_id in line)


def test_a_running_job_whose_workers_are_all_gone_is_failed_by_the_reaper(chaos: Chaos) -> None:
    # Given two jobs replicas, each with its reaper, and a long TTS job running on a worker
    chaos.stack.start_replica("jobs", REPLICA)
    editor = chaos.accounts.create("editor")
    project = make_project(chaos.http, editor)
    job = tts_job(chaos.http, editor, project["id"], long_text(1400))
    running = wait_for(chaos.http, editor, job["id"], {"RUNNING"}, timeout=60)
    workers = worker_names(chaos.stack)
    jobs_port = chaos.endpoints.metrics["jobs"]
    reaped_before = scraped(jobs_port, "aiorch_jobs_reaped_total", type="TTS")
    # When every worker dies at once
    for name in workers:
        chaos.stack.supervisor.stop(name, signal.SIGKILL)
    killed_at = time.monotonic()
    try:
        # Then the job is failed as abandoned, soon after its time limit and the grace, by one of the reapers
        done = wait_for(
            chaos.http,
            editor,
            job["id"],
            {"COMPLETED", "FAILED", "CANCELLED"},
            timeout=(TIME_LIMIT_SECONDS + GRACE_SECONDS) * 3,
        )
        reaped_after = time.monotonic() - killed_at
        time.sleep(2)  # both reapers pass over the job at least once more, now that it is FAILED
    finally:
        chaos.stack.supervisor.stop(REPLICA)
        for name in workers:
            chaos.stack.supervisor.restart(name)
    assert done["status"] == "FAILED", done
    assert done["error"].startswith("abandoned:"), done["error"]
    assert running["worker_id"] in done["error"]
    reaps = {replica: reaps_logged(chaos, replica, job["id"]) for replica in ("jobs", REPLICA)}
    assert sum(reaps.values()) == 1, reaps
    assert scraped(jobs_port, "aiorch_jobs_reaped_total", type="TTS") == reaped_before + reaps["jobs"]

    # And the redelivery a restarted worker gets is called off, with no result and no change to the job
    def called_off(worker: str) -> bool:
        port = chaos.endpoints.metrics[worker]
        try:
            return scraped(port, "aiorch_worker_jobs_total", outcome="cancelled", type="TTS") >= 1
        except httpx.TransportError:  # the restarted worker does not serve /metrics yet
            return False

    wait_until(lambda: any(called_off(name) for name in workers), 30, "a restarted worker to call the redelivery off")
    after = wait_for(chaos.http, editor, job["id"], {"FAILED"}, timeout=5)
    assert after["error"] == done["error"]
    assert stored_results(chaos.endpoints.database_url, job["id"]) == 0
    Figures("chaos", "reaper").record(
        time_limit_s=TIME_LIMIT_SECONDS,
        grace_s=GRACE_SECONDS,
        workers_killed=len(workers),
        reaped_after_kill_s=round(reaped_after, 1),
        jobs_replicas=2,
        reaped_by_replica=reaps,
        results=0,
    )
    assert reaped_after < TIME_LIMIT_SECONDS + GRACE_SECONDS + 10
