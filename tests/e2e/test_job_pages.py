"""Job lists page by key: every job once, in order, through the gateway; tokens stay bound to their query."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import text

from services.common.counting import EXACT_COUNT_LIMIT
from services.common.db import make_engine
from services.devstack.stack import Endpoints
from tests.support import Accounts, User, make_project, tts_job


def pages(http: httpx.Client, user: User, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Every page of a job list, following next_page_token (at most 50 pages)."""
    replies = []
    token = ""
    for _ in range(50):
        reply = http.get("/api/jobs/", params={**params, "page_token": token}, headers=user.headers)
        assert reply.status_code == 200, reply.text
        replies.append(reply.json())
        token = replies[-1]["next_page_token"]
        if not token:
            return replies
    raise AssertionError("more than 50 pages")


def test_pages_hold_every_job_once_newest_first(http: httpx.Client, accounts: Accounts) -> None:
    editor = accounts.create("editor")
    project = make_project(http, editor)
    created = [tts_job(http, editor, project["id"], f"Job number {i}.", name=f"job-{i}")["id"] for i in range(7)]

    replies = pages(http, editor, {"project_id": project["id"], "page_size": 3})

    assert [len(r["jobs"]) for r in replies] == [3, 3, 1]
    assert [j["id"] for r in replies for j in r["jobs"]] == list(reversed(created))
    assert {r["total_size"] for r in replies} == {7}


def test_pages_by_name_follow_the_name(http: httpx.Client, accounts: Accounts) -> None:
    editor = accounts.create("editor")
    project = make_project(http, editor)
    for name in ("delta", "alpha", "echo", "bravo", "charlie"):
        tts_job(http, editor, project["id"], "Hello.", name=name)

    replies = pages(http, editor, {"project_id": project["id"], "page_size": 2, "ordering": "name"})

    assert [j["name"] for r in replies for j in r["jobs"]] == ["alpha", "bravo", "charlie", "delta", "echo"]


def test_a_token_is_refused_for_another_filter(http: httpx.Client, accounts: Accounts) -> None:
    editor = accounts.create("editor")
    project = make_project(http, editor)
    for i in range(3):
        tts_job(http, editor, project["id"], f"Job number {i}.")
    first = http.get("/api/jobs/", params={"project_id": project["id"], "page_size": 1}, headers=editor.headers).json()

    reply = http.get(
        "/api/jobs/",
        params={
            "project_id": project["id"],
            "page_size": 1,
            "status": "FAILED",
            "page_token": first["next_page_token"],
        },
        headers=editor.headers,
    )

    assert reply.status_code == 400
    assert "page_token" in reply.json()["message"]


def test_another_users_project_is_not_found_in_lists(http: httpx.Client, accounts: Accounts) -> None:
    owner, stranger = accounts.create("editor"), accounts.create("editor")
    project = make_project(http, owner)

    reply = http.get("/api/jobs/", params={"project_id": project["id"]}, headers=stranger.headers)

    assert reply.status_code == 404


def test_a_long_list_answers_an_estimated_total_beyond_the_exact_count(
    http: httpx.Client, accounts: Accounts, stack: Endpoints
) -> None:
    editor = accounts.create("editor")
    project = make_project(http, editor)
    rows = EXACT_COUNT_LIMIT + 500
    engine = make_engine(stack.database_url, 1)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO jobs.jobs (id, project_id, owner_id, name, description, type, status, progress,"
                    " message, params, input_url, attempt, attempts, error, worker_id, cancel_requested,"
                    " last_delivery, last_sequence, version, created_at, updated_at)"
                    " SELECT gen_random_uuid(), CAST(:project AS uuid), CAST(:owner AS uuid), 'stored ' || i, '',"
                    " 'TTS', 'COMPLETED', 100, '', '', '', 1, 1, '', '', false, 0, 0, 1,"
                    " now() - make_interval(secs => i), now() FROM generate_series(1, :rows) AS i"
                ),
                {"project": project["id"], "owner": editor.id, "rows": rows},
            )
    finally:
        engine.dispose()

    reply = http.get("/api/jobs/", params={"project_id": project["id"], "status": "COMPLETED"}, headers=editor.headers)

    assert reply.status_code == 200, reply.text
    listed = reply.json()
    assert [j["name"] for j in listed["jobs"]] == [f"stored {i}" for i in range(1, 51)]
    # Exact counting stops at the limit; beyond it the answer is the planner's estimate, near the truth.
    assert EXACT_COUNT_LIMIT < listed["total_size"] <= 2 * rows
