"""Cancel (pending and running), job permissions by role and relation, and project deletion."""

from __future__ import annotations

import time

import httpx
import pytest

from services.devstack.stack import LocalStack
from tests.permission_table import PROJECT_ACCESS, Level, outcome
from tests.support import Accounts, User, long_text, make_project, tts_job, wait_for, worker_names

SHORT = "A short sentence for a small job."


def test_a_cancelled_pending_job_never_starts(
    http: httpx.Client, accounts: Accounts, local_stack: LocalStack, workers_stopped: None
) -> None:
    editor = accounts.create("editor")
    project = make_project(http, editor)
    job = tts_job(http, editor, project["id"], SHORT)
    cancelled = http.post(f"/api/jobs/{job['id']}/cancel/", json={}, headers=editor.headers)
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "CANCELLED"
    for name in worker_names(local_stack):
        local_stack.supervisor.restart(name)
    time.sleep(3)
    after = http.get(f"/api/jobs/{job['id']}/", headers=editor.headers).json()
    assert (after["status"], after["attempts"], after["worker_id"]) == ("CANCELLED", 0, "")
    for name in worker_names(local_stack):
        local_stack.supervisor.stop(name)


def test_a_running_job_is_cancelled_within_two_seconds(http: httpx.Client, accounts: Accounts) -> None:
    editor = accounts.create("editor")
    project = make_project(http, editor)
    job = tts_job(http, editor, project["id"], long_text(), voice="espeak")
    wait_for(http, editor, job["id"], {"RUNNING"}, timeout=30)
    asked = time.monotonic()
    assert http.post(f"/api/jobs/{job['id']}/cancel/", json={}, headers=editor.headers).status_code == 200
    done = wait_for(http, editor, job["id"], {"CANCELLED", "COMPLETED", "FAILED"}, timeout=10)
    assert done["status"] == "CANCELLED"
    assert time.monotonic() - asked < 2.0
    assert http.get(f"/api/jobs/{job['id']}/result/", headers=editor.headers).status_code == 400


# Each person of the cast as the permission table sees them: (global role, relation to the project).
STANDING = {
    "owner": ("editor", "owner"),
    "admin": ("admin", "stranger"),
    "member_editor": ("editor", "member-editor"),
    "member_viewer": ("viewer", "member-viewer"),
    "viewer_with_editor_role": ("viewer", "member-editor"),
    "stranger": ("editor", "stranger"),
}


def http_status(access: Level, needed: Level) -> int:
    """The HTTP status of a REST call needing `needed` for a caller with `access` to the project."""
    answer = outcome(access, needed)
    return 200 if answer == "ok" else int(answer)


@pytest.fixture
def cast(http: httpx.Client, accounts: Accounts) -> dict[str, User]:
    """An owner with a project and a finished job, members of each project role, and strangers."""
    owner = accounts.create("editor")
    people = {
        "owner": owner,
        "admin": accounts.create("admin"),
        "member_editor": accounts.create("editor"),
        "member_viewer": accounts.create("viewer"),
        "viewer_with_editor_role": accounts.create("viewer"),
        "stranger": accounts.create("editor"),
    }
    return people


def test_job_permissions_follow_the_project(http: httpx.Client, cast: dict[str, User]) -> None:
    owner = cast["owner"]
    project = make_project(http, owner)
    for who, role in (("member_editor", "editor"), ("member_viewer", "viewer"), ("viewer_with_editor_role", "editor")):
        reply = http.post(
            f"/api/projects/{project['id']}/members/",
            json={"user_id": cast[who].id, "role": role},
            headers=owner.headers,
        )
        assert reply.status_code == 200, reply.text
    job = wait_for(http, owner, tts_job(http, owner, project["id"], SHORT)["id"], {"COMPLETED"})
    result = http.get(f"/api/jobs/{job['id']}/result/", headers=owner.headers).json()

    expected_read = {who: http_status(PROJECT_ACCESS[standing], Level.READ) for who, standing in STANDING.items()}
    expected_write = {who: http_status(PROJECT_ACCESS[standing], Level.WRITE) for who, standing in STANDING.items()}
    # API keys stand where their user does, within their role and scope: a key limited to another project
    # sees nothing here, whoever holds it; a viewer-role key of the owner reads and writes nothing.
    elsewhere = make_project(http, owner)
    for who, user, fields, read, write in (
        ("owner_key", owner, {}, 200, 200),
        ("owner_viewer_key", owner, {"role": "viewer"}, 200, 403),
        ("owner_key_elsewhere", owner, {"project_id": elsewhere["id"]}, 404, 404),
        ("admin_key_elsewhere", cast["admin"], {"project_id": elsewhere["id"]}, 404, 404),
    ):
        made = http.post("/api/keys/", json={"name": who, **fields}, headers=user.headers)
        assert made.status_code == 200, made.text
        cast[who] = User(user.id, user.username, user.role, user.password, made.json()["secret"], "")
        expected_read[who], expected_write[who] = read, write
    for who, user in cast.items():
        assert http.get(f"/api/jobs/{job['id']}/", headers=user.headers).status_code == expected_read[who], who
        assert http.get(f"/api/job-results/{result['id']}/", headers=user.headers).status_code == expected_read[who], (
            who
        )
        assert http.get(result["result_url"], headers=user.headers).status_code == expected_read[who], who
        rename = http.patch(f"/api/jobs/{job['id']}/", json={"name": f"by {who}"}, headers=user.headers)
        assert rename.status_code == expected_write[who], who
        create = http.post(
            "/api/jobs/",
            json={"project_id": project["id"], "type": "TTS", "params": {"tts": {"text": "x"}}},
            headers=user.headers,
        )
        assert create.status_code == expected_write[who], (who, create.text)
        listed = http.get("/api/jobs/", params={"project_id": project["id"]}, headers=user.headers)
        # Listing the jobs of a project one may not see answers 404, like the project itself.
        assert listed.status_code == expected_read[who], who
        if listed.status_code == 200:
            assert job["id"] in [j["id"] for j in listed.json()["jobs"]], who
    # Progress by hand is for admins (and workers), not for project members.
    assert (
        http.patch(f"/api/jobs/{job['id']}/update_progress/", json={"progress": 50}, headers=owner.headers).status_code
        == 403
    )


def test_deleting_a_project_removes_its_jobs_and_files(
    http: httpx.Client, accounts: Accounts, local_stack: LocalStack
) -> None:
    owner = accounts.create("editor")
    project = make_project(http, owner)
    done = wait_for(http, owner, tts_job(http, owner, project["id"], SHORT)["id"], {"COMPLETED"})
    assert local_stack.endpoints is not None
    results_dir = local_stack.endpoints.blob_dir / "results" / done["id"]
    assert results_dir.exists()
    assert http.delete(f"/api/projects/{project['id']}/", headers=owner.headers).status_code == 200
    deadline = time.monotonic() + 15
    while http.get(f"/api/jobs/{done['id']}/", headers=accounts.admin.headers).status_code != 404:
        assert time.monotonic() < deadline, "the project's job was not removed"
        time.sleep(0.2)
    assert not results_dir.exists()
