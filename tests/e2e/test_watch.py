"""Watch streams: gRPC-web in a browser's framing, every job over SSE, and a second jobs replica."""

from __future__ import annotations

import json
import struct
import threading
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest
from aiorch.jobs.v1 import jobs_pb2, jobs_pb2_grpc, types_pb2

from services.devstack.stack import LocalStack
from tests.support import Accounts, make_project, tts_job, wait_for

TEXT = "Watching a job from a browser is the whole point of a live progress bar."


def grpc_web_messages(body: Iterator[bytes]) -> Iterator[tuple[int, bytes]]:
    """Frames of a gRPC-web response as (flag, payload), read as they arrive."""
    buffer = b""
    for piece in body:
        buffer += piece
        while len(buffer) >= 5:
            flag, length = struct.unpack(">BI", buffer[:5])
            if len(buffer) < 5 + length:
                break
            yield flag, buffer[5 : 5 + length]
            buffer = buffer[5 + length :]


def test_grpc_web_watch_streams_progress_to_a_browser(http: httpx.Client, accounts: Accounts) -> None:
    editor = accounts.create("editor")
    project = make_project(http, editor)
    job = tts_job(http, editor, project["id"], TEXT)
    request = jobs_pb2.WatchJobRequest(id=job["id"]).SerializeToString()
    updates: list[jobs_pb2.JobUpdate] = []
    trailers = ""
    with http.stream(
        "POST",
        "/aiorch.jobs.v1.JobService/WatchJob",
        content=struct.pack(">BI", 0, len(request)) + request,
        headers={
            "content-type": "application/grpc-web+proto",
            "x-grpc-web": "1",
            "origin": "http://console.example",
            **editor.headers,
        },
        timeout=60,
    ) as reply:
        assert reply.status_code == 200
        for flag, payload in grpc_web_messages(reply.iter_bytes()):
            if flag & 0x80:
                trailers = payload.decode()
            else:
                updates.append(jobs_pb2.JobUpdate.FromString(payload))
    assert "grpc-status:0" in trailers.replace(" ", "")
    assert updates[-1].job.status == types_pb2.COMPLETED
    assert [u.job.progress for u in updates] == sorted(u.job.progress for u in updates)


def test_watch_all_jobs_over_sse_sees_only_what_the_caller_may_see(http: httpx.Client, accounts: Accounts) -> None:
    editor, stranger = accounts.create("editor"), accounts.create("editor")
    project = make_project(http, editor)
    seen: dict[str, list[dict[str, Any]]] = {"editor": [], "stranger": []}
    ready = threading.Barrier(3, timeout=20)

    def listen(who: str, headers: dict[str, str]) -> None:
        try:
            with (
                httpx.Client(base_url=str(http.base_url), timeout=30) as client,
                client.stream("GET", "/api/watch/jobs", headers=headers) as reply,
            ):
                ready.wait()
                for line in reply.iter_lines():
                    if line.startswith("data: "):
                        job = json.loads(line[6:])["job"]
                        seen[who].append(job)
                        if who == "editor" and job["status"] == "COMPLETED":
                            return
        except httpx.HTTPError:
            # The stranger's stream never ends by itself; it is cut when the stack stops.
            if who == "editor":
                raise

    threads = [
        threading.Thread(target=listen, args=("editor", editor.headers)),
        threading.Thread(target=listen, args=("stranger", stranger.headers), daemon=True),
    ]
    for thread in threads:
        thread.start()
    ready.wait()
    job = tts_job(http, editor, project["id"], TEXT)
    threads[0].join(timeout=60)
    assert [j["status"] for j in seen["editor"] if j["id"] == job["id"]][-1] == "COMPLETED"
    assert all(j["id"] != job["id"] for j in seen["stranger"])


@pytest.fixture(scope="module")
def second_jobs_replica(local_stack: LocalStack) -> Iterator[str]:
    address = local_stack.start_replica("jobs", "jobs-replica-2")
    try:
        yield address
    finally:
        local_stack.supervisor.stop("jobs-replica-2")


def test_a_watcher_on_another_replica_sees_every_stored_change(
    http: httpx.Client, accounts: Accounts, second_jobs_replica: str
) -> None:
    editor = accounts.create("editor")
    project = make_project(http, editor)
    job = tts_job(http, editor, project["id"], TEXT)
    with grpc.insecure_channel(second_jobs_replica) as channel:
        updates = list(
            jobs_pb2_grpc.JobServiceStub(channel).WatchJob(
                jobs_pb2.WatchJobRequest(id=job["id"]), metadata=editor.metadata, timeout=60
            )
        )
    assert updates[-1].job.status == types_pb2.COMPLETED
    stored = wait_for(http, editor, job["id"], {"COMPLETED"})
    assert updates[-1].job.progress == stored["progress"] == 100


def test_admins_correct_progress_and_record_results_by_hand(http: httpx.Client, accounts: Accounts) -> None:
    admin, editor = accounts.admin, accounts.create("editor")
    project = make_project(http, editor)
    done = wait_for(http, editor, tts_job(http, editor, project["id"], TEXT)["id"], {"COMPLETED"})
    assert (
        http.patch(f"/api/jobs/{done['id']}/update_progress/", json={"progress": 10}, headers=admin.headers).status_code
        == 400
    )
    results = http.get("/api/job-results/", params={"job_id": done["id"]}, headers=editor.headers).json()["job_results"]
    assert len(results) == 1
    duplicate = http.post(
        "/api/job-results/", json={"job_id": done["id"], "result_url": "s3://x"}, headers=admin.headers
    )
    assert duplicate.status_code == 409
    assert http.post("/api/job-results/", json={"job_id": done["id"]}, headers=editor.headers).status_code == 403
    patched = http.patch(
        f"/api/job-results/{results[0]['id']}/", json={"meta": {"reviewed": True}}, headers=admin.headers
    )
    assert patched.status_code == 200
    assert patched.json()["meta"] == {"reviewed": True}
    assert http.delete(f"/api/job-results/{results[0]['id']}/", headers=editor.headers).status_code == 200
    assert http.get(f"/api/job-results/{results[0]['id']}/", headers=editor.headers).status_code == 404


def test_service_accounts_report_progress_and_results_but_manage_nothing(
    http: httpx.Client, accounts: Accounts, workers_stopped: None
) -> None:
    service = accounts.create("service")
    editor = accounts.create("editor")
    project = make_project(http, editor)
    job = tts_job(http, editor, project["id"], TEXT)
    assert http.get(f"/api/jobs/{job['id']}/", headers=service.headers).status_code == 200
    moved = http.patch(
        f"/api/jobs/{job['id']}/update_progress/",
        json={"progress": 30, "message": "outside worker"},
        headers=service.headers,
    )
    assert moved.status_code == 200
    assert (moved.json()["progress"], moved.json()["message"]) == (30, "outside worker")
    assert (
        http.patch(f"/api/jobs/{job['id']}/update_progress/", json={"progress": 10}, headers=service.headers).json()[
            "progress"
        ]
        == 30
    )
    recorded = http.post(
        "/api/job-results/",
        json={"job_id": job["id"], "result_url": "https://cdn.example/out.wav"},
        headers=service.headers,
    )
    assert recorded.status_code == 200
    assert http.get(f"/api/jobs/{job['id']}/", headers=editor.headers).json()["status"] == "COMPLETED"
    assert http.post("/api/projects/", json={"name": "nope"}, headers=service.headers).status_code == 403
    assert (
        http.post(
            "/api/jobs/",
            json={"project_id": project["id"], "type": "TTS", "params": {"tts": {"text": "x"}}},
            headers=service.headers,
        ).status_code
        == 403
    )
    assert http.delete(f"/api/jobs/{job['id']}/", headers=service.headers).status_code == 403
