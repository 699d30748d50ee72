"""The gateway serves the OpenAPI document and its docs page, and live answers agree with the document.

build/web/api/ must be built (`make api-docs`, part of `make web`) before the stack starts: Envoy reads the
files it serves when it loads its configuration.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from openapi_schema_validator import OAS30Validator
from schemathesis import BaseSchema
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gateway.openapi import ProtoIndex, build_document, project_version
from services.devstack.stack import DESCRIPTOR, STATIC_ROOT, Endpoints
from tests.support import Accounts, make_project, tts_job, wait_for

pytestmark = pytest.mark.stack

CONFORMANCE = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
STREAM_SECONDS = 60


@pytest.fixture(scope="module")
def document(http: httpx.Client) -> dict[str, Any]:
    reply = http.get("/api/openapi.json")
    assert reply.status_code == 200, f"build {STATIC_ROOT / 'api'} (make api-docs) before the stack starts"
    served: dict[str, Any] = reply.json()
    return served


@pytest.fixture(scope="module")
def api(stack: Endpoints, document: dict[str, Any]) -> BaseSchema:
    schema = schemathesis.openapi.from_dict(document)
    schema.config.base_url = stack.gateway_url
    return schema


def message_validator(document: dict[str, Any], name: str) -> OAS30Validator:
    """Validates JSON against one component schema of the document (its references resolved in it)."""
    return OAS30Validator({"$ref": f"#/components/schemas/{name}", "components": document["components"]})


def test_the_served_document_is_the_one_the_descriptor_set_gives(document: dict[str, Any]) -> None:
    assert document == build_document(ProtoIndex.from_file(DESCRIPTOR), project_version())


def test_the_served_document_is_json(http: httpx.Client) -> None:
    reply = http.get("/api/openapi.json")
    assert reply.headers["content-type"] == "application/json; charset=utf-8"
    assert reply.headers["cache-control"] == "no-cache"


@pytest.mark.parametrize("path", ["/api/docs", "/api/docs/"])
def test_the_docs_page_renders_the_served_document(http: httpx.Client, path: str) -> None:
    page = http.get(path)
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    script = http.get("/api/docs/docs.js")
    assert '"/api/openapi.json"' in script.text
    for asset in ("/api/docs/swagger-ui-bundle.js", "/api/docs/swagger-ui.css", "/api/docs/docs.js"):
        assert f'"{asset}"' in page.text
        reply = http.get(asset)
        assert reply.status_code == 200, asset
        assert reply.content == (Path(STATIC_ROOT) / asset.removeprefix("/")).read_bytes()
    assert http.get("/api/docs/swagger-ui-bundle.js").headers["content-type"] == "text/javascript; charset=utf-8"


def call(api: BaseSchema, path: str, verb: str, **data: Any) -> schemathesis.Response:
    """One request built from the document's operation, its answer checked against the document."""
    case = api[path][verb].Case(**data)
    response: schemathesis.Response = case.call_and_validate(checks=CONFORMANCE)
    return response


def test_the_token_endpoints_answer_as_documented(api: BaseSchema, accounts: Accounts) -> None:
    # Not fuzzed (failed logins would trip the login throttle for the whole suite): valid calls instead.
    user = accounts.create("viewer")
    pair = call(api, "/api/token/", "POST", body={"username": user.username, "password": user.password}).json()
    assert (
        call(api, "/api/token/", "POST", body={"username": user.username, "password": "wrong-one!"}).status_code == 401
    )
    rotated = call(api, "/api/token/refresh/", "POST", body={"refresh": pair["refresh"]}).json()
    assert call(api, "/api/token/verify/", "POST", body={"token": rotated["access"]}).json() == {}
    assert call(api, "/api/token/verify/", "POST", body={"token": "not-a-token"}).status_code == 401
    assert call(api, "/api/token/jwks/", "GET").json()["keys"]
    assert call(api, "/api/logout/", "POST", body={"refresh": rotated["refresh"]}).json() == {}
    assert call(api, "/api/token/revoke/", "POST", body={"refresh": rotated["refresh"]}).status_code == 200
    assert call(api, "/api/token/refresh/", "POST", body={"refresh": rotated["refresh"]}).status_code == 401


def test_errors_from_every_layer_match_the_document(api: BaseSchema, accounts: Accounts) -> None:
    admin = accounts.create("admin")
    bearer = {"authorization": f"Bearer {admin.access}"}
    # The service (400), Envoy's transcoder (malformed JSON, 400), the service's auth (401), a hidden object (404).
    assert call(api, "/api/projects/", "POST", headers=bearer, body={"name": ""}).status_code == 400
    assert call(api, "/api/projects/", "POST", headers=bearer, body={"name": "a\x00b"}).status_code == 400
    assert call(api, "/api/projects/", "POST", headers=bearer, body={"name": 5}).status_code == 400
    assert call(api, "/api/projects/", "GET").status_code == 401
    assert call(api, "/api/projects/{id}/", "GET", headers=bearer, path_parameters={"id": "missing"}).status_code == 404


def read_events(reply: httpx.Response, stop: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    """The `data:` messages of a Server-Sent Events answer until it ends or `stop` says so."""
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/event-stream")
    events = []
    for line in reply.iter_lines():
        if line.startswith("data: "):
            events.append(json.loads(line.removeprefix("data: ")))
            if stop(events[-1]):
                break
    return events


def test_watch_streams_send_documented_job_updates(
    http: httpx.Client, accounts: Accounts, document: dict[str, Any]
) -> None:
    # Given an open stream of a project's jobs (it never ends by itself: read until the job completes)
    editor = accounts.create("editor")
    project = make_project(http, editor)
    every_path = f"/api/watch/jobs/?project_id={project['id']}"
    with http.stream("GET", every_path, headers=editor.headers, timeout=STREAM_SECONDS) as reply:
        # When a job runs
        job = tts_job(http, editor, project["id"], "Checked against the document.")
        every = read_events(reply, lambda update: update["job"]["status"] == "COMPLETED")
    with http.stream("GET", f"/api/jobs/{job['id']}/watch/", headers=editor.headers, timeout=STREAM_SECONDS) as reply:
        one = read_events(reply, lambda _: False)

    # Then both streams are documented as SSE and every message is a JobUpdate as the document defines it
    for path in ("/api/jobs/{id}/watch/", "/api/watch/jobs/"):
        assert "text/event-stream" in document["paths"][path]["get"]["responses"]["200"]["content"]
    assert [update["job"]["status"] for update in one] == ["COMPLETED"]
    assert {update["job"]["id"] for update in every} == {job["id"]}
    validator = message_validator(document, "aiorch.jobs.v1.JobUpdate")
    for update in [*every, *one]:
        validator.validate(update)


def test_a_finished_jobs_result_and_download_answer_as_documented(
    http: httpx.Client, api: BaseSchema, accounts: Accounts
) -> None:
    editor = accounts.create("editor")
    job = tts_job(http, editor, make_project(http, editor)["id"], "A result to download.")
    wait_for(http, editor, job["id"], {"COMPLETED"})
    bearer = {"authorization": f"Bearer {editor.access}"}

    result = call(api, "/api/jobs/{id}/result/", "GET", headers=bearer, path_parameters={"id": job["id"]}).json()
    download = call(api, "/api/job-results/{id}/download/", "GET", headers=bearer, path_parameters={"id": result["id"]})

    assert download.headers["content-type"][0] == "audio/x-wav"
    assert download.content[:4] == b"RIFF"
