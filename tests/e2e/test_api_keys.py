"""API keys on the real stack: shown once, accepted by the gateway and by every service, capped by their user's
role and scope, revoked everywhere within a second, and disabled with their user."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import httpx
import pytest
from aiorch.auth.v1 import profiles_pb2, profiles_pb2_grpc
from aiorch.jobs.v1 import jobs_pb2, jobs_pb2_grpc
from aiorch.projects.v1 import projects_pb2, projects_pb2_grpc

from services.devstack.stack import Endpoints
from tests.support import Accounts, User, make_project, tts_job, wait_for


def make_key(http: httpx.Client, user: User, **fields: Any) -> dict[str, Any]:
    """A new key of `user` through REST: the answer with its secret."""
    reply = http.post("/api/keys/", json={"name": "test key", **fields}, headers=user.headers)
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def as_key(user: User, secret: str) -> User:
    """`user` calling with the key instead of an access token."""
    return User(user.id, user.username, user.role, user.password, secret, "")


def key_metadata(secret: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {secret}"),)


def every_service(stack: Endpoints) -> dict[str, Callable[[str], object]]:
    """One read per service, called straight on its gRPC port (not through the gateway)."""
    auth = profiles_pb2_grpc.ProfileServiceStub(grpc.insecure_channel(stack.grpc["auth"]))
    projects = projects_pb2_grpc.ProjectServiceStub(grpc.insecure_channel(stack.grpc["projects"]))
    jobs = jobs_pb2_grpc.JobServiceStub(grpc.insecure_channel(stack.grpc["jobs"]))
    return {
        "auth": lambda s: auth.GetProfile(profiles_pb2.GetProfileRequest(id="me"), metadata=key_metadata(s)),
        "projects": lambda s: projects.ListProjects(projects_pb2.ListProjectsRequest(), metadata=key_metadata(s)),
        "jobs": lambda s: jobs.ListJobs(jobs_pb2.ListJobsRequest(), metadata=key_metadata(s)),
    }


def refused(call: Callable[[str], object], secret: str) -> bool:
    try:
        call(secret)
    except grpc.RpcError as error:
        assert error.code() is grpc.StatusCode.UNAUTHENTICATED, error.details()
        return True
    return False


def test_a_key_is_shown_once_and_listed_by_its_prefix(http: httpx.Client, accounts: Accounts) -> None:
    editor = accounts.create("editor")
    made = make_key(http, editor, name="nightly dubbing")
    secret, key = made["secret"], made["key"]
    assert secret.startswith(f"aio_{key['id']}_")
    assert (key["prefix"], key["role"], key["active"], key["user_id"]) == (
        f"aio_{key['id']}",
        "editor",
        True,
        editor.id,
    )
    listed = http.get("/api/keys/", headers=editor.headers)
    assert listed.status_code == 200
    assert [k["id"] for k in listed.json()["keys"]] == [key["id"]]
    assert secret not in listed.text
    # Nobody else sees the key, and only its user (or an admin) revokes it.
    stranger = accounts.create("editor")
    assert http.get("/api/keys/", headers=stranger.headers).json()["keys"] == []
    assert http.delete(f"/api/keys/{key['id']}/", headers=stranger.headers).status_code == 404
    assert key["id"] in [k["id"] for k in http.get("/api/keys/", headers=accounts.admin.headers).json()["keys"]]


def test_a_key_works_through_rest_grpc_and_every_service(
    http: httpx.Client, accounts: Accounts, stack: Endpoints, gateway_channel: grpc.Channel
) -> None:
    editor = accounts.create("editor")
    secret = make_key(http, editor)["secret"]
    program = as_key(editor, secret)
    project = make_project(http, program)
    job = wait_for(http, program, tts_job(http, program, project["id"], "A key made this.")["id"], {"COMPLETED"})
    assert job["owner"] == editor.id
    jobs = jobs_pb2_grpc.JobServiceStub(gateway_channel)
    assert jobs.GetJob(jobs_pb2.GetJobRequest(id=job["id"]), metadata=key_metadata(secret)).id == job["id"]
    for name, call in every_service(stack).items():
        assert not refused(call, secret), name
    # last used is reported within a report period of the use.
    deadline = time.monotonic() + 30
    while not http.get("/api/keys/", headers=editor.headers).json()["keys"][0].get("last_used_at"):
        assert time.monotonic() < deadline, "last use was not recorded"
        time.sleep(0.5)


def test_a_revoked_key_is_refused_by_every_service_within_a_second(
    http: httpx.Client, accounts: Accounts, stack: Endpoints
) -> None:
    editor = accounts.create("editor")
    made = make_key(http, editor)
    secret = made["secret"]
    calls = every_service(stack)
    for call in calls.values():
        call(secret)
    revoked_at = time.monotonic()
    assert http.delete(f"/api/keys/{made['key']['id']}/", headers=editor.headers).status_code == 200
    waits: dict[str, float] = {}
    while len(waits) < len(calls):
        for name, call in calls.items():
            if name not in waits and refused(call, secret):
                waits[name] = time.monotonic() - revoked_at
        assert time.monotonic() - revoked_at < 5, waits
        time.sleep(0.02)
    print("revoked key refused after (s):", {k: round(v, 3) for k, v in waits.items()})
    assert max(waits.values()) < 1.0, waits
    assert http.get("/api/projects/", headers=as_key(editor, secret).headers).status_code == 401
    listed = http.get("/api/keys/", params={"include_revoked": "true"}, headers=editor.headers).json()["keys"]
    assert listed[0]["active"] is False
    assert listed[0]["revoked_at"]
    assert http.get("/api/keys/", headers=editor.headers).json()["keys"] == []


def test_a_revoked_keys_open_watch_stream_ends(http: httpx.Client, accounts: Accounts) -> None:
    editor = accounts.create("editor")
    made = make_key(http, editor)
    program = as_key(editor, made["secret"])
    project = make_project(http, program)
    with http.stream("GET", "/api/watch/jobs", params={"project_id": project["id"]}, headers=program.headers) as s:
        assert s.status_code == 200
        lines = s.iter_lines()
        assert http.delete(f"/api/keys/{made['key']['id']}/", headers=editor.headers).status_code == 200
        started = time.monotonic()
        for _ in lines:
            assert time.monotonic() - started < 10
    assert time.monotonic() - started < 5


def test_a_key_acts_with_no_more_than_its_users_present_role(http: httpx.Client, accounts: Accounts) -> None:
    viewer = accounts.create("viewer")
    refused_role = http.post("/api/keys/", json={"name": "x", "role": "editor"}, headers=viewer.headers)
    assert refused_role.status_code == 403
    assert "viewer" in refused_role.json()["message"]
    editor = accounts.create("editor")
    viewer_key = as_key(editor, make_key(http, editor, role="viewer")["secret"])
    editor_key = as_key(editor, make_key(http, editor)["secret"])
    project = make_project(http, editor)
    assert http.post("/api/projects/", json={"name": "by a viewer key"}, headers=viewer_key.headers).status_code == 403
    assert (
        http.patch(f"/api/projects/{project['id']}/", json={"name": "renamed"}, headers=viewer_key.headers).status_code
        == 403
    )
    assert http.get(f"/api/projects/{project['id']}/", headers=viewer_key.headers).status_code == 200
    # Demoted to viewer: the editor key now writes nothing; promoted back, it writes again.
    admin = accounts.admin
    assert http.patch(f"/api/profiles/{editor.id}/", json={"role": "viewer"}, headers=admin.headers).status_code == 200
    deadline = time.monotonic() + 5
    while (
        http.patch(f"/api/projects/{project['id']}/", json={"name": "n"}, headers=editor_key.headers).status_code != 403
    ):
        assert time.monotonic() < deadline, "the demotion did not reach the key"
        time.sleep(0.1)
    assert http.patch(f"/api/profiles/{editor.id}/", json={"role": "editor"}, headers=admin.headers).status_code == 200
    deadline = time.monotonic() + 5
    while (
        http.patch(f"/api/projects/{project['id']}/", json={"name": "m"}, headers=editor_key.headers).status_code != 200
    ):
        assert time.monotonic() < deadline, "the promotion did not reach the key"
        time.sleep(0.1)


def test_deactivating_a_user_disables_their_keys_until_reactivated(http: httpx.Client, accounts: Accounts) -> None:
    editor = accounts.create("editor")
    program = as_key(editor, make_key(http, editor)["secret"])
    assert http.get("/api/projects/", headers=program.headers).status_code == 200
    admin = accounts.admin
    assert http.delete(f"/api/profiles/{editor.id}/", headers=admin.headers).status_code == 200
    deadline = time.monotonic() + 5
    while http.get("/api/projects/", headers=program.headers).status_code != 401:
        assert time.monotonic() < deadline, "the deactivated user's key still works"
        time.sleep(0.05)
    assert http.patch(f"/api/profiles/{editor.id}/", json={"active": True}, headers=admin.headers).status_code == 200
    deadline = time.monotonic() + 5
    while http.get("/api/projects/", headers=program.headers).status_code != 200:
        assert time.monotonic() < deadline, "the reactivated user's key stays refused"
        time.sleep(0.05)


def test_keys_are_managed_with_a_login_and_expire(http: httpx.Client, accounts: Accounts) -> None:
    editor = accounts.create("editor")
    made = make_key(http, editor)
    program = as_key(editor, made["secret"])
    assert http.post("/api/keys/", json={"name": "minted"}, headers=program.headers).status_code == 403
    assert http.delete(f"/api/keys/{made['key']['id']}/", headers=program.headers).status_code == 403
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    assert http.post("/api/keys/", json={"name": "old", "expires_at": past}, headers=editor.headers).status_code == 400
    soon = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    short = as_key(editor, make_key(http, editor, expires_at=soon)["secret"])
    assert http.get("/api/projects/", headers=short.headers).status_code == 200
    time.sleep(2.5)
    expired = http.get("/api/projects/", headers=short.headers)
    assert expired.status_code == 401
    assert "expired" in expired.json()["message"]
    # A forged key of the right shape is refused by the service, not let through.
    forged = "aio_0123456789abcdef_" + "A" * 43
    assert http.get("/api/projects/", headers={"authorization": f"Bearer {forged}"}).status_code == 401
    assert (
        http.post("/api/projects/", json={"name": "x"}, headers={"authorization": f"Bearer {forged}"}).status_code
        == 401
    )


@pytest.mark.parametrize("role", ["admin", "editor"])
def test_a_key_limited_to_one_project_sees_no_other(http: httpx.Client, accounts: Accounts, role: str) -> None:
    user = accounts.admin if role == "admin" else accounts.create("editor")
    mine = make_project(http, user)
    other = make_project(http, user)
    job = wait_for(http, user, tts_job(http, user, other["id"], "Out of scope.")["id"], {"COMPLETED"})
    scoped = as_key(user, make_key(http, user, project_id=mine["id"])["secret"])
    assert [p["id"] for p in http.get("/api/projects/", headers=scoped.headers).json()["projects"]] == [mine["id"]]
    assert http.get(f"/api/projects/{other['id']}/", headers=scoped.headers).status_code == 404
    assert http.get(f"/api/jobs/{job['id']}/", headers=scoped.headers).status_code == 404
    assert http.get("/api/jobs/", params={"project_id": other["id"]}, headers=scoped.headers).status_code == 404
    assert job["id"] not in [j["id"] for j in http.get("/api/jobs/", headers=scoped.headers).json()["jobs"]]
    create = {"project_id": other["id"], "type": "TTS", "params": {"tts": {"text": "x"}}}
    assert http.post("/api/jobs/", json=create, headers=scoped.headers).status_code == 404
    assert http.post("/api/projects/", json={"name": "new"}, headers=scoped.headers).status_code == 403
    inside = tts_job(http, scoped, mine["id"], "In scope.")
    assert http.get(f"/api/jobs/{inside['id']}/", headers=scoped.headers).status_code == 200
