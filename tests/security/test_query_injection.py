"""Search, filter and ordering parameters with SQL metacharacters are harmless.

Every payload goes through the gateway into each list endpoint's search, filter and ordering
parameters. None may answer 5xx, none may show more than the caller may see, `%` and `_` match
themselves, and every table is still there afterwards.
"""

from __future__ import annotations

from collections import Counter

import httpx
import pytest

from tests.figures import Figures
from tests.support import Accounts, make_project, tts_job, unique

PAYLOADS = [
    "' OR '1'='1",
    "' OR 1=1 --",
    "'; DROP TABLE projects.projects; --",
    '" OR ""="',
    "1) OR (1=1",
    "%",
    "_",
    "\\",
    "%' --",
    "$$; SELECT pg_sleep(5); $$",
    "' UNION SELECT id, username, password_hash FROM auth.users --",
    "name; DELETE FROM jobs.jobs",
    "00000000-0000-0000-0000-000000000000' OR '1'='1",
]
# (path, parameter) pairs that take the payloads.
TARGETS = [
    ("/api/projects/", "search"),
    ("/api/projects/", "owner"),
    ("/api/projects/", "ordering"),
    ("/api/jobs/", "search"),
    ("/api/jobs/", "status"),
    ("/api/jobs/", "ordering"),
    ("/api/jobs/", "project_id"),
    ("/api/profiles/", "search"),
    ("/api/profiles/", "role"),
    ("/api/settings/", "key"),
    ("/api/settings/", "user"),
    ("/api/job-results/", "job_id"),
]
LIST_KEYS = {
    "/api/projects/": "projects",
    "/api/jobs/": "jobs",
    "/api/profiles/": "profiles",
    "/api/settings/": "settings",
}


def test_metacharacters_in_every_query_parameter_are_harmless(
    http: httpx.Client, accounts: Accounts, figures: Figures
) -> None:
    editor = accounts.create("editor")
    project = make_project(http, editor)["id"]
    tts_job(http, editor, project, "Hi.")
    outsider = accounts.create("editor")
    make_project(http, outsider)
    statuses: Counter[int] = Counter()
    for path, parameter in TARGETS:
        for payload in PAYLOADS:
            reply = http.get(path, params={parameter: payload}, headers=editor.headers, timeout=10)
            statuses[reply.status_code] += 1
            assert reply.status_code in (200, 400, 404), f"{path}?{parameter}={payload!r}: {reply.status_code}"
            key = LIST_KEYS.get(path)
            if reply.status_code == 200 and key is not None:
                items = reply.json().get(key, [])
                owners = {item.get("owner", editor.id) for item in items}
                # Never more than the caller may see: their own things only (the outsider's stay hidden).
                assert owners <= {editor.id}, f"{path}?{parameter}={payload!r} showed {owners}"
    # The tables are all still there and still answer.
    assert http.get("/api/projects/", headers=editor.headers).json()["projects"][0]["id"] == project
    assert http.get("/api/jobs/", headers=editor.headers).status_code == 200
    assert http.get("/api/profiles/me/", headers=editor.headers).status_code == 200
    calls = sum(statuses.values())
    summary = ", ".join(f"{code} x{count}" for code, count in sorted(statuses.items()))
    figures.add(f"{len(PAYLOADS)} payloads x {len(TARGETS)} parameters = {calls} calls, no 5xx ({summary})")


@pytest.mark.parametrize("wildcard", ["%", "_"])
def test_like_wildcards_in_a_search_match_themselves(wildcard: str, http: httpx.Client, accounts: Accounts) -> None:
    editor = accounts.create("editor")
    tag = unique("tag")
    literal = make_project(http, editor, f"{tag} 100{wildcard}done")["id"]
    make_project(http, editor, f"{tag} 100xdone")
    found = http.get("/api/projects/", params={"search": f"100{wildcard}d"}, headers=editor.headers).json()
    assert [p["id"] for p in found["projects"]] == [literal]
