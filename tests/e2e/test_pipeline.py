"""The whole pipeline as a user meets it: project, upload, submit, watch live, download; over REST and gRPC."""

from __future__ import annotations

import hashlib
import io
import wave
from collections.abc import Iterator

import cv2
import grpc
import httpx
import numpy as np
import pytest
from aiorch.jobs.v1 import files_pb2, files_pb2_grpc, jobs_pb2, jobs_pb2_grpc, results_pb2, results_pb2_grpc, types_pb2
from aiorch.projects.v1 import projects_pb2, projects_pb2_grpc

from services.devstack.stack import Endpoints
from tests.support import Accounts, file_job, make_project, tts_job, upload, wait_for, watch_sse

TEXT = "The quick brown fox jumps over the lazy dog. Then it runs far away into the green forest."


def wav_seconds(data: bytes) -> float:
    with wave.open(io.BytesIO(data)) as audio:
        assert audio.getnchannels() == 1
        assert audio.getsampwidth() == 2
        return float(audio.getnframes() / audio.getframerate())


def test_rest_flow_submit_watch_over_sse_and_download_the_wav(http: httpx.Client, accounts: Accounts) -> None:
    editor = accounts.create("editor")
    project = make_project(http, editor)
    # The default voice (the neural one for English), end to end.
    job = tts_job(http, editor, project["id"], TEXT, voice="", name="fox")
    assert job["status"] == "PENDING"
    assert job["type"] == "TTS"

    states = watch_sse(http, editor, job["id"])
    assert states[-1]["status"] == "COMPLETED"
    progress = [s["progress"] for s in states]
    assert progress == sorted(progress)
    assert progress[-1] == 100
    assert {s["status"] for s in states} >= {"RUNNING", "COMPLETED"} or states[0]["status"] == "COMPLETED"

    result = http.get(f"/api/jobs/{job['id']}/result/", headers=editor.headers).json()
    assert result["files"][0].endswith(".wav")
    assert result["result_url"] == f"/api/job-results/{result['id']}/download"
    download = http.get(result["result_url"] + "/", headers=editor.headers)
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("audio/")
    seconds = wav_seconds(download.content)
    # About 17 words: a plausible length of speech, neither silence nor minutes.
    assert 2.0 < seconds < 15.0
    details = http.get(f"/api/job-results/{result['id']}/job_details/", headers=editor.headers).json()
    assert (details["id"], details["status"], details["type"]) == (job["id"], "COMPLETED", "TTS")
    listed = http.get(f"/api/projects/{project['id']}/jobs/", headers=editor.headers).json()
    assert [j["id"] for j in listed["jobs"]] == [job["id"]]


def test_grpc_flow_through_the_gateway(gateway_channel: grpc.Channel, accounts: Accounts) -> None:
    editor = accounts.create("editor")
    projects = projects_pb2_grpc.ProjectServiceStub(gateway_channel)
    jobs = jobs_pb2_grpc.JobServiceStub(gateway_channel)
    results = results_pb2_grpc.JobResultServiceStub(gateway_channel)
    project = projects.CreateProject(projects_pb2.CreateProjectRequest(name="grpc"), metadata=editor.metadata)
    job = jobs.CreateJob(
        jobs_pb2.CreateJobRequest(
            project_id=project.id,
            type=types_pb2.TTS,
            params=types_pb2.JobParams(tts=types_pb2.TtsParams(text=TEXT, language="en")),
        ),
        metadata=editor.metadata,
    )
    updates = list(jobs.WatchJob(jobs_pb2.WatchJobRequest(id=job.id), metadata=editor.metadata, timeout=60))
    assert updates[-1].job.status == types_pb2.COMPLETED
    versions = [u.version for u in updates]
    assert versions == sorted(set(versions))
    result = jobs.GetResultForJob(jobs_pb2.GetResultForJobRequest(id=job.id), metadata=editor.metadata)
    data = b"".join(
        chunk.data
        for chunk in results.DownloadResult(results_pb2.DownloadResultRequest(id=result.id), metadata=editor.metadata)
    )
    assert 2.0 < wav_seconds(data) < 15.0


def _speech(http: httpx.Client, accounts: Accounts) -> bytes:
    editor = accounts.create("editor")
    project = make_project(http, editor)
    job = wait_for(http, editor, tts_job(http, editor, project["id"], TEXT)["id"], {"COMPLETED"})
    result = http.get(f"/api/jobs/{job['id']}/result/", headers=editor.headers).json()
    return http.get(result["result_url"], headers=editor.headers).content


def test_rest_upload_is_sniffed_and_feeds_a_job(http: httpx.Client, accounts: Accounts) -> None:
    audio = _speech(http, accounts)
    editor = accounts.create("editor")
    uploaded = upload(http, editor, "../../speech.wav", audio, "audio/wav")
    assert uploaded.status_code == 200, uploaded.text
    file = uploaded.json()
    assert file["filename"] == "speech.wav"
    assert file["content_type"].startswith("audio/")
    assert int(file["size"]) == len(audio)
    assert file["sha256"] == hashlib.sha256(audio).hexdigest()
    project = make_project(http, editor)
    job = file_job(http, editor, project["id"], "STT", {"stt": {}}, file["id"])
    assert job.status_code == 200, job.text
    done = wait_for(http, editor, job.json()["id"], {"FAILED", "COMPLETED"}, timeout=120)
    assert done["status"] == "COMPLETED", done["error"]
    wrong_kind = file_job(http, editor, project["id"], "AI_STORIES", {"ai_stories": {"script": "hi"}}, file["id"])
    assert wrong_kind.status_code == 400
    assert "needs an image" in wrong_kind.json()["message"]


def test_grpc_client_streaming_upload(stack: Endpoints, accounts: Accounts) -> None:
    editor = accounts.create("editor")
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
    with grpc.insecure_channel(stack.grpc["jobs"]) as channel:
        files = files_pb2_grpc.FileServiceStub(channel)

        def parts() -> Iterator[files_pb2.UploadFileRequest]:
            yield files_pb2.UploadFileRequest(
                header=files_pb2.UploadFileHeader(filename="face.png", content_type="image/png")
            )
            for start in range(0, len(png), 1000):
                yield files_pb2.UploadFileRequest(chunk=png[start : start + 1000])

        made = files.UploadFile(parts(), metadata=editor.metadata)
        assert (made.content_type, made.size) == ("image/png", len(png))
        assert files.GetFile(files_pb2.GetFileRequest(id=made.id), metadata=editor.metadata).sha256 == made.sha256
        other = accounts.create("editor")
        with pytest.raises(grpc.RpcError) as err:
            files.GetFile(files_pb2.GetFileRequest(id=made.id), metadata=other.metadata)
        assert err.value.code() is grpc.StatusCode.NOT_FOUND


def test_uploads_over_the_limit_are_cut_off_and_leave_nothing(
    http: httpx.Client, accounts: Accounts, stack: Endpoints
) -> None:
    editor = accounts.create("editor")
    before = {p.name for p in (stack.blob_dir / "inputs").glob("*")} if (stack.blob_dir / "inputs").exists() else set()
    reply = upload(http, editor, "big.bin", b"\0" * (6 * 1024 * 1024), "application/octet-stream")
    assert reply.status_code == 400
    assert "limit" in reply.json()["message"]
    after = {p.name for p in (stack.blob_dir / "inputs").glob("*")} if (stack.blob_dir / "inputs").exists() else set()
    assert after == before
    assert list((stack.blob_dir / ".spool").glob(".upload-*")) == []


def test_a_file_that_is_not_what_it_claims_is_refused(http: httpx.Client, accounts: Accounts) -> None:
    editor = accounts.create("editor")
    reply = upload(http, editor, "voice.wav", b"\x89PNG\r\n\x1a\n" + b"\0" * 400, "audio/wav")
    assert reply.status_code == 400
    assert "claims to be audio/wav" in reply.json()["message"]


def test_the_same_client_request_id_makes_one_job(http: httpx.Client, accounts: Accounts) -> None:
    editor = accounts.create("editor")
    project = make_project(http, editor)
    first = tts_job(http, editor, project["id"], TEXT, client_request_id="order-42")
    second = tts_job(http, editor, project["id"], TEXT, client_request_id="order-42")
    assert first["id"] == second["id"]
    listed = http.get("/api/jobs/", params={"project_id": project["id"]}, headers=editor.headers).json()
    assert [j["id"] for j in listed["jobs"]] == [first["id"]]
    wait_for(http, editor, first["id"], {"COMPLETED"})


def test_bad_job_requests_are_400(http: httpx.Client, accounts: Accounts) -> None:
    editor = accounts.create("editor")
    project = make_project(http, editor)
    cases = [
        {"project_id": project["id"], "type": "TTS", "params": {"tts": {"text": ""}}},
        {"project_id": project["id"], "type": "TTS", "params": {"stt": {}}},
        {"project_id": project["id"], "type": "STT", "params": {"stt": {}}},
        {"project_id": project["id"], "type": "STT", "params": {"stt": {}}, "input_url": "file:///etc/passwd"},
        {"project_id": project["id"], "type": "NOPE", "params": {}},
    ]
    for body in cases:
        assert http.post("/api/jobs/", json=body, headers=editor.headers).status_code == 400, body
    assert http.get("/api/jobs/", params={"ordering": "password"}, headers=editor.headers).status_code == 400


def _faceless_png() -> bytes:
    gradient = np.tile(np.linspace(0, 255, 256, dtype=np.uint8), (256, 1))
    ok, encoded = cv2.imencode(".png", gradient)
    assert ok
    return bytes(encoded.tobytes())


def test_retry_runs_a_failed_job_again_and_keeps_its_history(http: httpx.Client, accounts: Accounts) -> None:
    editor = accounts.create("editor")
    project = make_project(http, editor)
    picture = upload(http, editor, "gradient.png", _faceless_png(), "image/png").json()
    job = file_job(
        http, editor, project["id"], "AI_STORIES", {"ai_stories": {"script": "Hello."}}, picture["id"]
    ).json()
    failed = wait_for(http, editor, job["id"], {"FAILED"})
    assert failed["error"]
    retried = http.post(f"/api/jobs/{job['id']}/retry/", json={}, headers=editor.headers)
    assert retried.status_code == 200
    assert retried.json()["status"] == "PENDING"
    again = wait_for(http, editor, job["id"], {"FAILED"})
    assert again["attempts"] >= 1
    assert http.post(f"/api/jobs/{job['id']}/cancel/", json={}, headers=editor.headers).status_code == 400


def test_a_request_id_reused_for_another_request_is_refused(http: httpx.Client, accounts: Accounts) -> None:
    editor = accounts.create("editor")
    project = make_project(http, editor)
    tts_job(http, editor, project["id"], TEXT, client_request_id="order-7")
    other = http.post(
        "/api/jobs/",
        json={
            "project_id": project["id"],
            "type": "TTS",
            "params": {"tts": {"text": "something else"}},
            "client_request_id": "order-7",
        },
        headers=editor.headers,
    )
    assert other.status_code == 409
    assert "different request" in other.json()["message"]


def test_an_input_file_in_use_cannot_be_deleted(http: httpx.Client, accounts: Accounts) -> None:
    editor = accounts.create("editor")
    audio = _speech(http, accounts)
    file = upload(http, editor, "a.wav", audio, "audio/wav").json()
    project = make_project(http, editor)
    job = file_job(http, editor, project["id"], "STT", {"stt": {}}, file["id"]).json()
    wait_for(http, editor, job["id"], {"FAILED", "COMPLETED"})
    assert http.delete(f"/api/files/{file['id']}/", headers=editor.headers).status_code == 400
    assert http.delete(f"/api/jobs/{job['id']}/", headers=editor.headers).status_code == 200
    assert http.delete(f"/api/files/{file['id']}/", headers=editor.headers).status_code == 200
    assert http.get(f"/api/files/{file['id']}/", headers=editor.headers).status_code == 404
