"""Operator repairs with the `aiorch` command: inspect the queues, requeue jobs after JetStream lost them."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx
import nats

from services.common import messaging
from services.devstack.stack import Endpoints, LocalStack
from tests.support import Accounts, make_project, tts_job, wait_for

AIORCH = str(Path(sys.executable).parent / "aiorch")


def aiorch(local_stack: LocalStack, *args: str) -> subprocess.CompletedProcess[str]:
    assert local_stack.endpoints is not None
    # The operators' NATS user, as `aiorch queue` runs with in a deployment.
    env = {**os.environ, "DATABASE_URL": local_stack.endpoints.database_url, **local_stack.endpoints.nats_env("admin")}
    return subprocess.run([AIORCH, *args], env=env, capture_output=True, text=True, timeout=60, check=False)


async def _purge_dispatch_stream(stack: Endpoints) -> None:
    nc = await nats.connect(stack.nats_url, **stack.nats_login("admin"))
    try:
        await nc.jetstream().purge_stream(messaging.DISPATCH_STREAM)
    finally:
        await nc.close()


def _waiting(report: str, job_type: str) -> int:
    for line in report.splitlines():
        if line.startswith(job_type + " "):
            return int(line.split()[1])
    raise AssertionError(f"no {job_type} row in:\n{report}")


def test_jobs_lost_by_jetstream_are_requeued_and_finish(
    http: httpx.Client, accounts: Accounts, local_stack: LocalStack, workers_stopped: None
) -> None:
    editor = accounts.create("editor")
    project = make_project(http, editor)
    job = tts_job(http, editor, project["id"], "Requeued after the queue was lost.")
    assert local_stack.endpoints is not None
    report = ""
    for _ in range(50):
        report = aiorch(local_stack, "queue").stdout
        if _waiting(report, "TTS") >= 1:
            break
    assert _waiting(report, "TTS") >= 1, report

    # The store is lost: the job is PENDING in the database but no worker will ever see it.
    asyncio.run(_purge_dispatch_stream(local_stack.endpoints))
    assert _waiting(aiorch(local_stack, "queue").stdout, "TTS") == 0

    refused = aiorch(local_stack, "requeue", "00000000-0000-0000-0000-000000000000")
    assert refused.returncode == 1
    assert "no job" in refused.stderr
    requeued = aiorch(local_stack, "requeue", job["id"])
    assert requeued.returncode == 0, requeued.stderr
    assert job["id"] in requeued.stdout
    for name in [n for n in local_stack.supervisor.names() if n.startswith("worker")]:
        local_stack.supervisor.restart(name)
    done = wait_for(http, editor, job["id"], {"COMPLETED", "FAILED"}, timeout=60)
    assert done["status"] == "COMPLETED"
    again = aiorch(local_stack, "requeue", job["id"])
    assert again.returncode == 1
    assert "only PENDING" in again.stderr
    for name in [n for n in local_stack.supervisor.names() if n.startswith("worker")]:
        local_stack.supervisor.stop(name)
