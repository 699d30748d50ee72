"""Who may do what, as data: one row per RPC, one expected outcome per role x relation.

Relations: `owner` (the caller owns the project, and uploaded the file), `member` (the caller is an
editor member of someone else's project), `stranger` (neither). For profiles, `owner` is the
caller's own profile and the others are the project owner's profile. Outcomes: `ok`, `403`
(PERMISSION_DENIED: the caller sees the object but may not do this), `404` (NOT_FOUND: the object
is not confirmed to exist), `400` (FAILED_PRECONDITION: allowed, but not in this state).

A row that the project governs names only the access it needs (`read`, `write`, `owner`); its outcomes
follow from tests/permission_table.py, the one table of who gets which access, which the unit and
integration suites check too. The other rows (files, profiles, admin-only calls) spell out their nine
outcomes. The viewer who owns a project is an editor who created it and was then demoted: they keep
reading what they own but never write (docs/api.md, "Who may do what").

Placeholders in requests and paths: {project}, its jobs {job} (pending), {done_job} (completed,
with the result {result}) and {spare_job} (pending), {file}, the project's {owner}, a viewer member
{bystander}, and {other_user} (in no project). Rows run in this order against one fresh set of
objects per cell and transport, so the destructive rows come last.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.permission_table import HUMAN_ROLES, PROJECT_ACCESS, Level, outcome

RELATIONS = ("owner", "member", "stranger")
CELLS = tuple(f"{role}:{relation}" for role in HUMAN_ROLES for relation in RELATIONS)
# This matrix's relations in the permission table's words: its member is an editor member.
_TABLE_RELATION = {"owner": "owner", "member": "member-editor", "stranger": "stranger"}


@dataclass(frozen=True)
class Row:
    """One RPC: how to call it over gRPC and REST, and the outcome expected in each cell."""

    method: str  # /package.Service/Method
    request: dict[str, Any]  # the gRPC request as JSON (placeholders allowed)
    http: str  # "VERB /path" through the gateway
    body: dict[str, Any] | None  # the REST body, None for none
    expected: dict[str, str]  # cell -> outcome

    @property
    def name(self) -> str:
        """The RPC's short name."""
        return self.method.rpartition("/")[2]


# Columns: admin:owner admin:member admin:stranger | editor:... | viewer:...   (or the project access needed)
_TABLE = """
/aiorch.projects.v1.ProjectService/GetProject        read
/aiorch.projects.v1.ProjectService/ListMembers       read
/aiorch.jobs.v1.JobService/ListJobs                  read
/aiorch.jobs.v1.JobService/GetJob                    read
/aiorch.jobs.v1.JobService/GetResultForJob           read
/aiorch.jobs.v1.JobResultService/GetJobResult        read
/aiorch.jobs.v1.JobResultService/GetJobDetails       read
/aiorch.jobs.v1.JobService/WatchJob                  read
/aiorch.jobs.v1.JobService/WatchJobs                 read
/aiorch.jobs.v1.FileService/GetFile                  ok ok ok   ok  404 404   ok  404 404
/aiorch.auth.v1.ProfileService/GetProfile            ok ok ok   ok  404 404   ok  404 404
/aiorch.auth.v1.ProfileService/UpdateProfile         ok ok ok   ok  404 404   ok  404 404
/aiorch.projects.v1.ProjectService/UpdateProject     write
/aiorch.jobs.v1.JobService/CreateJob                 write
/aiorch.jobs.v1.JobService/UpdateJob                 write
/aiorch.jobs.v1.JobService/UpdateProgress            ok ok ok   403 403 403   403 403 403
/aiorch.jobs.v1.JobService/CancelJob                 write
/aiorch.jobs.v1.JobService/RetryJob                  write
/aiorch.jobs.v1.JobResultService/UpdateJobResult     ok ok ok   403 403 403   403 403 403
/aiorch.jobs.v1.JobResultService/CreateJobResult     ok ok ok   403 403 403   403 403 403
/aiorch.projects.v1.ProjectService/AddMember         owner
/aiorch.projects.v1.ProjectService/RemoveMember      owner
/aiorch.jobs.v1.JobResultService/DeleteJobResult     write
/aiorch.jobs.v1.JobService/DeleteJob                 write
/aiorch.jobs.v1.FileService/DeleteFile               ok ok ok   ok  404 404   403 404 404
/aiorch.projects.v1.ProjectService/DeleteProject     owner
/aiorch.auth.v1.ProfileService/DeleteProfile         400 ok ok  403 404 404   403 404 404
"""

# How each RPC is called: the gRPC request, and the REST verb, path and body through the gateway.
_CALLS: dict[str, tuple[dict[str, Any], str, dict[str, Any] | None]] = {
    "GetProject": ({"id": "{project}"}, "GET /api/projects/{project}/", None),
    "ListMembers": ({"project_id": "{project}"}, "GET /api/projects/{project}/members/", None),
    "ListJobs": ({"project_id": "{project}"}, "GET /api/projects/{project}/jobs/", None),
    "GetJob": ({"id": "{job}"}, "GET /api/jobs/{job}/", None),
    "GetResultForJob": ({"id": "{done_job}"}, "GET /api/jobs/{done_job}/result/", None),
    "GetJobResult": ({"id": "{result}"}, "GET /api/job-results/{result}/", None),
    "GetJobDetails": ({"id": "{result}"}, "GET /api/job-results/{result}/job_details/", None),
    # Open streams: the first message (the snapshot) arrives, or the stream is refused before any header.
    "WatchJob": ({"id": "{job}"}, "GET /api/jobs/{job}/watch", None),
    "WatchJobs": ({"project_id": "{project}"}, "GET /api/watch/jobs?project_id={project}", None),
    "GetFile": ({"id": "{file}"}, "GET /api/files/{file}/", None),
    "GetProfile": ({"id": "{owner}"}, "GET /api/profiles/{owner}/", None),
    "UpdateProfile": ({"id": "{owner}", "name": "Renamed"}, "PATCH /api/profiles/{owner}/", {"name": "Renamed"}),
    "UpdateProject": ({"id": "{project}", "name": "renamed"}, "PATCH /api/projects/{project}/", {"name": "renamed"}),
    "CreateJob": (
        {"project_id": "{project}", "type": "TTS", "params": {"tts": {"text": "Hi.", "voice": "espeak"}}},
        "POST /api/jobs/",
        {"project_id": "{project}", "type": "TTS", "params": {"tts": {"text": "Hi.", "voice": "espeak"}}},
    ),
    "UpdateJob": ({"id": "{job}", "name": "renamed"}, "PATCH /api/jobs/{job}/", {"name": "renamed"}),
    "UpdateProgress": (
        {"id": "{job}", "progress": 10, "message": "m"},
        "PATCH /api/jobs/{job}/update_progress/",
        {"progress": 10, "message": "m"},
    ),
    "CancelJob": ({"id": "{job}"}, "POST /api/jobs/{job}/cancel/", {}),
    "RetryJob": ({"id": "{job}"}, "POST /api/jobs/{job}/retry/", {}),
    "UpdateJobResult": (
        {"id": "{result}", "meta": {"note": "edited"}},
        "PATCH /api/job-results/{result}/",
        {"meta": {"note": "edited"}},
    ),
    "CreateJobResult": (
        {"job_id": "{spare_job}", "meta": {"note": "by hand"}},
        "POST /api/job-results/",
        {"job_id": "{spare_job}", "meta": {"note": "by hand"}},
    ),
    "AddMember": (
        {"project_id": "{project}", "user_id": "{other_user}", "role": "viewer"},
        "POST /api/projects/{project}/members/",
        {"user_id": "{other_user}", "role": "viewer"},
    ),
    "RemoveMember": (
        {"project_id": "{project}", "user_id": "{bystander}"},
        "DELETE /api/projects/{project}/members/{bystander}/",
        None,
    ),
    "DeleteJobResult": ({"id": "{result}"}, "DELETE /api/job-results/{result}/", None),
    "DeleteJob": ({"id": "{spare_job}"}, "DELETE /api/jobs/{spare_job}/", None),
    "DeleteFile": ({"id": "{file}"}, "DELETE /api/files/{file}/", None),
    "DeleteProject": ({"id": "{project}"}, "DELETE /api/projects/{project}/", None),
    "DeleteProfile": ({"id": "{owner}"}, "DELETE /api/profiles/{owner}/", None),
}


def _project_outcomes(needed: Level) -> list[str]:
    """Each cell's outcome for a call that needs `needed` access to the project."""
    return [outcome(PROJECT_ACCESS[role, _TABLE_RELATION[relation]], needed) for role, relation in _cells()]


def _cells() -> list[tuple[str, str]]:
    return [(role, relation) for role, _, relation in (cell.partition(":") for cell in CELLS)]


def _rows() -> list[Row]:
    rows = []
    for line in _TABLE.strip().splitlines():
        method, *outcomes = line.split()
        if len(outcomes) == 1:
            outcomes = _project_outcomes(Level[outcomes[0].upper()])
        assert len(outcomes) == len(CELLS), f"{method}: {len(outcomes)} outcomes for {len(CELLS)} cells"
        request, http, body = _CALLS[method.rpartition("/")[2]]
        rows.append(Row(method, request, http, body, dict(zip(CELLS, outcomes, strict=True))))
    return rows


MATRIX = _rows()


def fill(template: Any, values: dict[str, str]) -> Any:
    """`template` with every {placeholder} in its strings replaced."""
    if isinstance(template, str):
        return template.format(**values)
    if isinstance(template, dict):
        return {key: fill(value, values) for key, value in template.items()}
    if isinstance(template, list):
        return [fill(value, values) for value in template]
    return template
