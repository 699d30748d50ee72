"""Issue 13, finding 4: no text field is unbounded, and nothing stored is too large for a path that carries it.

The attack: a job description of 1.1 MiB answered 500 on create, but the job was stored and ran; after
that GetJob and ListJobs answered 500 for every member of the project (Envoy's transcoder buffer) and the
job's live updates failed ("nats: maximum payload exceeded"). Now every string field of every request
message of every RPC is refused one character over its limit (services/common/field_limits.py), over gRPC
and REST, before anything is stored; and the largest job the limits allow reads back through GetJob,
ListJobs, WatchJob (SSE) and the NATS broadcast behind WatchJobs.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any, cast
from urllib.parse import quote

import grpc
import httpx
import pytest
from aiorch.jobs.v1 import jobs_pb2, jobs_pb2_grpc, types_pb2
from google.api import annotations_pb2
from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

from services.common.field_limits import limit_of
from services.common.peer import CLIENT_ADDRESS_HEADER
from services.devstack.stack import Endpoints
from tests.figures import Figures
from tests.request_fields import BACKENDS, TextField, text_fields
from tests.support import Accounts, User, cancel_jobs, make_project, unique

TEXT_FIELDS = text_fields()
# The finding's reproduction: a description of 1.1 MiB.
HUGE_DESCRIPTION = "d" * (1_100 * 1024)
# Login attempts land on a documentation address, not on the tests' own 127.0.0.1 (the login throttle).
PEER = (CLIENT_ADDRESS_HEADER, "203.0.113.44")


def _rest_route(text_field: TextField) -> tuple[str, str, str] | None:
    """(HTTP method, path template, body rule) of the field's RPC, or None when it has no JSON route."""
    rule = text_field.method.GetOptions().Extensions[annotations_pb2.http]
    verb = rule.WhichOneof("pattern")
    if verb is None or verb == "custom" or rule.body not in ("", "*"):
        return None
    return verb.upper(), getattr(rule, verb), rule.body


REST_FIELDS = [f for f in TEXT_FIELDS if _rest_route(f) is not None]


@pytest.fixture(scope="module")
def admin(accounts: Accounts) -> User:
    """An admin of its own: every RPC reaches its handler's checks, so a refusal here is the limit's."""
    return accounts.create("admin")


@pytest.fixture(scope="module")
def channels(stack: Endpoints) -> Iterator[dict[str, grpc.Channel]]:
    """A channel straight to each service."""
    opened = {name: grpc.insecure_channel(stack.grpc[name]) for name in set(BACKENDS.values())}
    yield opened
    for channel in opened.values():
        channel.close()


def _over(text_field: TextField) -> str:
    return "a" * (limit_of(text_field.field).chars + 1)


def _call(channel: grpc.Channel, text_field: TextField, request: Message, user: User) -> grpc.RpcError | None:
    method = text_field.method
    path = f"/{method.containing_service.full_name}/{method.name}"
    response_class = message_factory.GetMessageClass(method.output_type)
    kwargs: dict[str, Any] = {
        "request_serializer": type(request).SerializeToString,
        "response_deserializer": response_class.FromString,
    }
    metadata = (*user.metadata, PEER)
    try:
        if method.client_streaming:
            channel.stream_unary(path, **kwargs)(iter([request]), metadata=metadata, timeout=10)
        elif method.server_streaming:
            for _ in channel.unary_stream(path, **kwargs)(request, metadata=metadata, timeout=10):
                break
        else:
            channel.unary_unary(path, **kwargs)(request, metadata=metadata, timeout=10)
    except grpc.RpcError as error:
        return error
    return None


@pytest.mark.parametrize("text_field", TEXT_FIELDS, ids=lambda f: f.name)
def test_every_string_field_one_over_its_limit_is_refused_over_grpc(
    text_field: TextField, channels: dict[str, grpc.Channel], admin: User
) -> None:
    channel = channels[BACKENDS[text_field.method.containing_service.full_name]]
    limit = limit_of(text_field.field).chars
    error = _call(channel, text_field, text_field.message(_over(text_field)), admin)
    assert error is not None, f"{text_field.name}: {limit + 1} characters were accepted"
    details = error.details() or ""
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, (error.code(), details)
    assert text_field.field.name in details
    assert f"at most {limit} characters" in details


def _rest_request(text_field: TextField, value: str) -> tuple[str, str, dict[str, Any]]:
    """Method, URL and httpx arguments that send the field (and nothing else but path ids) over REST."""
    route = _rest_route(text_field)
    assert route is not None
    verb, template, body_rule = route
    fields = json_format.MessageToDict(text_field.message(value), preserving_proto_field_name=True)
    path = template
    for name in [part.split("}")[0] for part in template.split("{")[1:]]:
        # A path id the field under test is not gets a well-formed id of nothing.
        path = path.replace(f"{{{name}}}", quote(str(fields.pop(name, uuid.uuid4())), safe=""))
    if body_rule == "*":
        return verb, path, {"content": json.dumps(fields)}
    return verb, path, {"params": {key: value for key, value in fields.items() if isinstance(value, str)}}


@pytest.mark.parametrize("text_field", REST_FIELDS, ids=lambda f: f.name)
def test_every_string_field_one_over_its_limit_is_refused_over_rest(
    text_field: TextField, http: httpx.Client, admin: User
) -> None:
    verb, path, arguments = _rest_request(text_field, _over(text_field))
    headers = {**admin.headers, "content-type": "application/json", PEER[0]: PEER[1]}
    reply = http.request(verb, path, headers=headers, timeout=10, **arguments)
    limit = limit_of(text_field.field).chars
    body = reply.text[:2000]
    assert reply.status_code == 400, (reply.status_code, body)
    assert text_field.field.name in body and f"at most {limit} characters" in body, body


def _project_jobs(http: httpx.Client, user: User, project_id: str) -> list[dict[str, Any]]:
    reply = http.get(f"/api/projects/{project_id}/jobs", headers=user.headers)
    assert reply.status_code == 200, reply.text[:500]
    jobs: list[dict[str, Any]] = reply.json()["jobs"]
    return jobs


def test_a_huge_job_description_is_refused_and_no_job_is_stored(
    http: httpx.Client, accounts: Accounts, stack: Endpoints, figures: Figures
) -> None:
    editor = accounts.create("editor")
    project = make_project(http, editor)
    body = {
        "project_id": project["id"],
        "type": "TTS",
        "params": {"tts": {"text": "hello"}},
        "description": HUGE_DESCRIPTION,
    }
    over_rest = http.post("/api/jobs", json=body, headers=editor.headers, timeout=30)
    with grpc.insecure_channel(stack.grpc["jobs"]) as channel:
        limit = limit_of(jobs_pb2.CreateJobRequest.DESCRIPTOR.fields_by_name["description"]).chars
        request = jobs_pb2.CreateJobRequest(
            project_id=project["id"],
            type=types_pb2.TTS,
            params=types_pb2.JobParams(tts=types_pb2.TtsParams(text="hello")),
            description="d" * (limit + 1),
        )
        with pytest.raises(grpc.RpcError) as over_grpc:
            jobs_pb2_grpc.JobServiceStub(channel).CreateJob(request, metadata=editor.metadata, timeout=10)
    # Envoy may refuse a body this large itself (413) before the service sees it; either way nothing is stored.
    assert over_rest.status_code in (400, 413), (over_rest.status_code, over_rest.text[:300])
    assert over_grpc.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert _project_jobs(http, editor, project["id"]) == []
    figures.add(
        f"a 1.1 MiB description answers {over_rest.status_code} over REST; {limit + 1} characters answer "
        f"INVALID_ARGUMENT over gRPC ({over_grpc.value.details()!r}); the project lists 0 jobs after"
    )


def test_an_over_long_description_does_not_replace_the_stored_one(http: httpx.Client, accounts: Accounts) -> None:
    editor = accounts.create("editor")
    project = make_project(http, editor)
    created = http.post(
        "/api/jobs",
        json={"project_id": project["id"], "type": "TTS", "params": {"tts": {"text": "hello"}}, "description": "ok"},
        headers=editor.headers,
    )
    assert created.status_code == 200, created.text
    job_id = created.json()["id"]
    limit = limit_of(jobs_pb2.UpdateJobRequest.DESCRIPTOR.fields_by_name["description"]).chars
    reply = http.patch(f"/api/jobs/{job_id}", json={"description": "d" * (limit + 1)}, headers=editor.headers)
    assert reply.status_code == 400, reply.text[:300]
    assert http.get(f"/api/jobs/{job_id}", headers=editor.headers).json()["description"] == "ok"


def _at_limit(message_class: type[Message], field: str, character: str) -> str:
    descriptor = cast(Descriptor, message_class.DESCRIPTOR)
    return character * limit_of(descriptor.fields_by_name[field]).chars


def _largest_tts_body(project_id: str, character: str) -> dict[str, Any]:
    """A TTS job with every text field at its limit, written in `character`."""
    return {
        "project_id": project_id,
        "type": "TTS",
        "name": "n" + _at_limit(jobs_pb2.CreateJobRequest, "name", character)[1:],
        "description": _at_limit(jobs_pb2.CreateJobRequest, "description", character),
        "client_request_id": unique("largest"),
        "params": {
            "tts": {
                "text": "t" + _at_limit(types_pb2.TtsParams, "text", character)[1:],
                "language": "en",
                "voice": _at_limit(types_pb2.TtsParams, "voice", character),
                "format": "wav",
            }
        },
    }


def _watch_project(stack: Endpoints, user: User, project_id: str) -> list[Any]:
    """Start a WatchJobs stream of the project in a thread; the list gets every update (or the error)."""
    got: list[Any] = []

    def watch() -> None:
        with grpc.insecure_channel(stack.grpc["jobs"], options=[("grpc.max_receive_message_length", -1)]) as channel:
            stream = jobs_pb2_grpc.JobServiceStub(channel).WatchJobs(
                jobs_pb2.WatchJobsRequest(project_id=project_id), metadata=user.metadata, timeout=30
            )
            try:
                for update in stream:
                    got.append(update)
            except grpc.RpcError as error:
                got.append(error)

    threading.Thread(target=watch, daemon=True).start()
    return got


def _wait_for_update(updates: list[Any], name: str) -> jobs_pb2.JobUpdate:
    """The first update of a job called `name`; fails on a stream error or after 20 s."""
    for _ in range(200):
        errors = [u for u in updates if isinstance(u, grpc.RpcError)]
        assert not errors, errors
        found: list[jobs_pb2.JobUpdate] = [u for u in updates if u.job.name == name]
        if found:
            return found[0]
        threading.Event().wait(0.1)
    raise AssertionError(f"no update of {name!r} in 20 s: {len(updates)} updates")


@pytest.mark.parametrize("character", ["\x01", "\U000e0020", "\U0001f600"], ids=["control", "tag", "emoji"])
def test_the_largest_job_reads_back_through_every_path(
    character: str,
    http: httpx.Client,
    accounts: Accounts,
    stack: Endpoints,
    workers_stopped: None,
    figures: Figures,
) -> None:
    editor = accounts.create("editor")
    project = make_project(http, editor)
    updates = _watch_project(stack, editor, project["id"])
    created = http.post("/api/jobs", json=_largest_tts_body(project["id"], character), headers=editor.headers)
    assert created.status_code == 200, created.text[:300]
    job_id = created.json()["id"]
    # A rename is broadcast on NATS with the whole job (its 100,000-character text too) to every replica.
    renamed = unique("renamed")
    assert http.patch(f"/api/jobs/{job_id}", json={"name": renamed}, headers=editor.headers).status_code == 200

    got = http.get(f"/api/jobs/{job_id}", headers=editor.headers, timeout=30)
    listed = http.get(f"/api/projects/{project['id']}/jobs", headers=editor.headers, timeout=30)
    with http.stream("GET", f"/api/jobs/{job_id}/watch", headers=editor.headers, timeout=30) as sse:
        first = next(line for line in sse.iter_lines() if line.startswith("data: "))
    broadcast = _wait_for_update(updates, renamed)

    assert got.status_code == 200, got.text[:300]
    assert got.json()["params"]["tts"]["text"] == created.json()["params"]["tts"]["text"]
    assert listed.status_code == 200 and [job["id"] for job in listed.json()["jobs"]] == [job_id]
    assert json.loads(first.removeprefix("data: "))["job"]["id"] == job_id
    assert broadcast.job.params.tts.text == created.json()["params"]["tts"]["text"]
    cancel_jobs(http, editor, [job_id])
    figures.add(
        f"largest TTS job in {character.encode('unicode_escape').decode()}: GetJob {len(got.content)} bytes, "
        f"ListJobs {len(listed.content)} bytes, first watch event {len(first.encode())} bytes, "
        f"NATS broadcast {broadcast.ByteSize()} bytes: all delivered"
    )


def test_a_page_of_the_longest_jobs_is_cut_short_instead_of_failing(
    http: httpx.Client, accounts: Accounts, workers_stopped: None, figures: Figures
) -> None:
    """Three TTS jobs of 100,000 emoji weigh 1.2 MB together, over the gateway's 1 MiB answer buffer."""
    owner = accounts.create("editor")
    project = make_project(http, owner)["id"]
    longest = limit_of(types_pb2.TtsParams.DESCRIPTOR.fields_by_name["text"]).chars
    created = set()
    for _ in range(3):
        body = {"project_id": project, "type": "TTS", "params": {"tts": {"text": "\U0001f600" * longest}}}
        reply = http.post("/api/jobs/", json=body, headers=owner.headers)
        assert reply.status_code == 200, reply.text[:200]
        created.add(reply.json()["id"])
    seen: list[str] = []
    pages, token = 0, ""
    while True:
        reply = http.get(
            f"/api/projects/{project}/jobs/", params={"page_size": 50, "page_token": token}, headers=owner.headers
        )
        assert reply.status_code == 200, reply.text[:300]
        page = reply.json()
        pages += 1
        seen += [job["id"] for job in page.get("jobs", [])]
        token = page.get("next_page_token", "")
        if not token:
            break
    assert sorted(seen) == sorted(created)
    cancel_jobs(http, owner, created)
    figures.add(
        f"three of the longest TTS jobs list in {pages} pages of page_size 50 (each page within its byte budget)"
    )
