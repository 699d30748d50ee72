"""Nothing is lost: a worker killed mid-job, NATS restarted, the jobs service restarted under watchers."""

from __future__ import annotations

import signal
import threading
import time
from typing import Any

import grpc
import httpx
from aiorch.jobs.v1 import jobs_pb2, jobs_pb2_grpc, types_pb2

from services.devstack.stack import Endpoints, LocalStack
from tests.support import Accounts, long_text, make_project, stored_results, tts_job, wait_for, worker_names


def test_a_worker_killed_mid_job_is_replaced_and_the_job_finishes_once(
    http: httpx.Client, accounts: Accounts, local_stack: LocalStack, stack: Endpoints
) -> None:
    editor = accounts.create("editor")
    project = make_project(http, editor)
    job = tts_job(http, editor, project["id"], long_text(), voice="espeak")
    running = wait_for(http, editor, job["id"], {"RUNNING"}, timeout=30)
    victim_pid = int(running["worker_id"].rsplit("-", 1)[1])
    victim = next(n for n in worker_names(local_stack) if local_stack.supervisor.process(n).pid == victim_pid)
    local_stack.supervisor.stop(victim, signal.SIGKILL)
    try:
        done = wait_for(http, editor, job["id"], {"COMPLETED", "FAILED"}, timeout=90)
        assert done["status"] == "COMPLETED", done["error"]
        assert done["worker_id"] != running["worker_id"]
        assert done["attempts"] >= 2
        assert stored_results(stack.database_url, job["id"]) == 1
    finally:
        local_stack.supervisor.restart(victim)


def test_jobs_survive_a_nats_restart(
    http: httpx.Client, accounts: Accounts, local_stack: LocalStack, stack: Endpoints
) -> None:
    editor = accounts.create("editor")
    project = make_project(http, editor)
    before = [tts_job(http, editor, project["id"], f"Job number {i} before the restart.")["id"] for i in range(4)]
    local_stack.supervisor.stop("nats")
    # Accepted while NATS is down: the outbox keeps them until it is back.
    during = [tts_job(http, editor, project["id"], f"Job number {i} while NATS is down.")["id"] for i in range(3)]
    time.sleep(1)
    local_stack.supervisor.restart("nats")
    for job_id in before + during:
        done = wait_for(http, editor, job_id, {"COMPLETED", "FAILED", "CANCELLED"}, timeout=90)
        assert done["status"] == "COMPLETED", (job_id, done["error"])
        assert stored_results(stack.database_url, job_id) == 1


def test_watchers_reconnect_after_a_jobs_service_restart_and_see_the_final_state(
    http: httpx.Client, accounts: Accounts, local_stack: LocalStack
) -> None:
    editor = accounts.create("editor")
    project = make_project(http, editor)
    job = tts_job(http, editor, project["id"], long_text(), voice="espeak")
    assert local_stack.endpoints is not None
    address = f"127.0.0.1:{local_stack.endpoints.gateway_port}"
    final: dict[str, Any] = {}

    def watch_with_reconnect() -> None:
        with grpc.insecure_channel(address) as channel:
            stub = jobs_pb2_grpc.JobServiceStub(channel)
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                try:
                    for update in stub.WatchJob(
                        jobs_pb2.WatchJobRequest(id=job["id"]), metadata=editor.metadata, timeout=90
                    ):
                        final["status"] = update.job.status
                    if final.get("status") in (types_pb2.COMPLETED, types_pb2.FAILED, types_pb2.CANCELLED):
                        return
                except grpc.RpcError:
                    final["reconnects"] = final.get("reconnects", 0) + 1
                    time.sleep(0.5)

    watcher = threading.Thread(target=watch_with_reconnect)
    watcher.start()
    time.sleep(0.5)
    local_stack.supervisor.stop("jobs")
    local_stack.supervisor.restart("jobs")
    watcher.join(timeout=120)
    assert final.get("status") == types_pb2.COMPLETED
    assert final.get("reconnects", 0) >= 1
