"""Schemathesis against the live gateway: generated requests from the served OpenAPI document find no 5xx
and no answer the document does not allow (status code, content type, body schema).

Bounded: at most FUZZ_EXAMPLES generated requests per operation, then a few short stateful scenarios (create,
then act on what was created or listed), one worker. Left out of the generated requests, and tested with valid
calls in tests/e2e/test_openapi.py instead:
- `POST /api/token/`: failed logins from one address trip the login throttle for every other test;
- the two watch streams: a stream of a job that does not end, or of all jobs, stays open.
Both phases also leave out the writes to existing profiles: generated calls reuse ids seen in answers, and the
fuzzing admin sees everyone, the suite's own admin included (whose password and session the other tests need:
a password or role change ends every session of that user).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.devstack.stack import VENV_BIN, Endpoints
from tests.support import Accounts, User

pytestmark = pytest.mark.stack

FUZZ_EXAMPLES = 8
NOT_FUZZED = ("TokenService_ObtainToken", "JobService_WatchJob", "JobService_WatchJobs")
PROFILE_WRITES = (
    "ProfileService_UpdateProfile",
    "ProfileService_UpdateProfile_2",
    "ProfileService_DeleteProfile",
    "ProfileService_SetPassword",
)
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
# Fixed so a failure replays; AIORCH_FUZZ_SEED explores other inputs.
SEED = os.environ.get("AIORCH_FUZZ_SEED", "20261130")
RUN_TIMEOUT_SECONDS = 420


@pytest.fixture(scope="module")
def fuzzer(accounts: Accounts, http: httpx.Client) -> Iterator[User]:
    """An admin of its own (generated calls may change its password); its projects go afterwards."""
    admin = accounts.create("admin")
    yield admin
    # Deleting a project also cancels and removes any jobs the run created in it.
    owned = http.get("/api/projects/", params={"owner": "me", "page_size": 500}, headers=admin.headers)
    for project in owned.json().get("projects", []):
        http.delete(f"/api/projects/{project['id']}/", headers=admin.headers)


def schemathesis_run(location: str, report: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`schemathesis run` with the conformance checks, one worker, a JSON report and no example database."""
    command = [
        str(VENV_BIN / "schemathesis"),
        "run",
        location,
        f"--checks={CHECKS}",
        "--workers=1",
        f"--seed={SEED}",
        "--request-timeout=10",
        "--generation-database=none",
        "--no-color",
        "--report=json",
        f"--report-json-path={report}",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT_SECONDS, check=False)


def test_generated_requests_find_no_server_error_and_no_undocumented_answer(
    stack: Endpoints, fuzzer: User, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    location = f"{stack.gateway_url}/api/openapi.json"
    common = [f"--header=Authorization: Bearer {fuzzer.access}", "--mode=all", f"--max-examples={FUZZ_EXAMPLES}"]
    runs = {
        "fuzzing": [*common, "--phases=fuzzing", *excluding(NOT_FUZZED + PROFILE_WRITES)],
        "stateful": [*common, "--phases=stateful", *excluding(NOT_FUZZED + PROFILE_WRITES)],
    }
    tested: dict[str, int] = {}
    for phase, args in runs.items():
        report = tmp_path / f"{phase}.json"
        run = schemathesis_run(location, report, *args)
        figures: dict[str, Any] = json.loads(report.read_text())
        operations, cases = figures["operations"], figures["test_cases"]
        tested[phase] = operations["tested"]
        with capsys.disabled():
            print(
                f"\nschemathesis {phase}: {operations['tested']} of {operations['total']} operations tested,"
                f" {cases['generated']} requests generated, {len(figures['failures'])} failures,"
                f" {figures['running_time']:.0f} s (seed {SEED})"
            )
        assert run.returncode == 0, run.stdout[-20000:]
        assert figures["failures"] == [] and figures["errors"] == []
        assert cases["generated"] >= operations["tested"]
    # Every operation but the ones left out got generated requests; the scenarios reached some of them.
    assert tested["fuzzing"] == operations["total"] - len(NOT_FUZZED + PROFILE_WRITES)
    assert tested["stateful"] > 0


def excluding(operation_ids: tuple[str, ...]) -> list[str]:
    """Arguments that leave these operations out of a run."""
    return [f"--exclude-operation-id={operation}" for operation in operation_ids]


def test_the_run_fails_when_an_answer_is_not_in_the_document(stack: Endpoints, fuzzer: User, tmp_path: Path) -> None:
    # Given the document without the 404 that an unknown project answers
    document = httpx.get(f"{stack.gateway_url}/api/openapi.json").json()
    del document["paths"]["/api/projects/{id}/"]["get"]["responses"]["404"]
    edited = tmp_path / "openapi.json"
    edited.write_text(json.dumps(document))
    report = tmp_path / "report.json"

    # When schemathesis reads a project that does not exist
    run = schemathesis_run(
        str(edited),
        report,
        f"--url={stack.gateway_url}",
        f"--header=Authorization: Bearer {fuzzer.access}",
        "--mode=positive",
        "--max-examples=3",
        "--phases=fuzzing",
        "--include-operation-id=ProjectService_GetProject",
    )

    # Then it reports the undocumented status code and fails
    assert run.returncode != 0
    failures = json.loads(report.read_text())["failures"]
    assert [(f["type"], f["operations"]) for f in failures] == [("UndefinedStatusCode", ["GET /api/projects/{id}/"])]
