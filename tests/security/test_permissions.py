"""The permission matrix (tests/security/permission_matrix.py), over gRPC, gRPC-web and REST through the gateway.

For every role x relation cell and each transport, a fresh project with jobs, a result, a file and
members is built, then every row of the matrix is called and its outcome compared with the table.
Ids of other users' objects must answer NOT_FOUND, never PERMISSION_DENIED. The watch streams are rows
too: a stream that may open delivers its first message (over REST as Server-Sent Events), one that may
not is refused before it sends anything.
"""

from __future__ import annotations

import io
import struct
import wave
from collections import Counter
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import descriptor_pool, json_format, message_factory
from google.protobuf.message import Message

from services.devstack.stack import LocalStack
from tests.figures import Figures
from tests.security.permission_matrix import CELLS, MATRIX, Row, fill
from tests.support import Accounts, User, make_project, stopped_workers, tts_job, upload

GRPC_OUTCOME = {
    grpc.StatusCode.OK: "ok",
    grpc.StatusCode.PERMISSION_DENIED: "403",
    grpc.StatusCode.NOT_FOUND: "404",
    grpc.StatusCode.FAILED_PRECONDITION: "400",
}
HTTP_OUTCOME = {200: "ok", 403: "403", 404: "404", 400: "400"}


@pytest.fixture(scope="module")
def quiet_workers(local_stack: LocalStack) -> Iterator[None]:
    """No worker runs while the matrix is called, so pending jobs stay pending."""
    with stopped_workers(local_stack):
        yield


def _silence_wav() -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(16000)
        audio.writeframes(b"\x00\x01" * 16000)
    return buffer.getvalue()


def _ok(reply: httpx.Response) -> dict[str, Any]:
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def _build_world(http: httpx.Client, accounts: Accounts, cell: str) -> tuple[User, dict[str, str]]:
    """The caller of `cell` and the ids of a fresh set of objects, built through the REST API."""
    role, relation = cell.split(":")
    admin = accounts.admin
    # A viewer owner is an editor who created the project and was demoted afterwards.
    owner = (
        accounts.create("editor" if role == "viewer" else role) if relation == "owner" else accounts.create("editor")
    )
    project = make_project(http, owner)["id"]
    bystander = accounts.create("viewer")
    caller = owner if relation == "owner" else accounts.create(role)
    members = f"/api/projects/{project}/members/"
    _ok(http.post(members, json={"user_id": bystander.id, "role": "viewer"}, headers=owner.headers))
    if relation == "member":
        _ok(http.post(members, json={"user_id": caller.id, "role": "editor"}, headers=owner.headers))
    job, done_job, spare_job = (tts_job(http, owner, project, "Hi.")["id"] for _ in range(3))
    result = _ok(http.post("/api/job-results/", json={"job_id": done_job, "meta": {}}, headers=admin.headers))["id"]
    file = _ok(upload(http, owner, "tone.wav", _silence_wav(), "audio/wav"))["id"]
    if role == "viewer" and relation == "owner":
        _ok(http.patch(f"/api/profiles/{owner.id}/", json={"role": "viewer"}, headers=admin.headers))
        pair = accounts.login(owner.username, owner.password)  # the role change ended the old session
        caller = User(owner.id, owner.username, "viewer", owner.password, pair.access, pair.refresh)
    ids = {
        "project": project,
        "job": job,
        "done_job": done_job,
        "spare_job": spare_job,
        "result": result,
        "file": file,
        "owner": owner.id,
        "bystander": bystander.id,
        "other_user": accounts.create("viewer").id,
    }
    return caller, ids


def _method(method: str) -> Any:
    service, _, name = method.lstrip("/").rpartition("/")
    return descriptor_pool.Default().FindServiceByName(service).methods_by_name[name]


def _message_classes(method: str) -> tuple[type[Message], type[Message]]:
    descriptor = _method(method)
    return (
        message_factory.GetMessageClass(descriptor.input_type),
        message_factory.GetMessageClass(descriptor.output_type),
    )


def _streams(row: Row) -> bool:
    return bool(_method(row.method).server_streaming)


def _call_grpc(channel: grpc.Channel, row: Row, caller: User, ids: dict[str, str]) -> str:
    request_class, response_class = _message_classes(row.method)
    request = json_format.ParseDict(fill(row.request, ids), request_class())
    encode, decode = request_class.SerializeToString, response_class.FromString
    try:
        if _streams(row):
            stream: Any = channel.unary_stream(row.method, encode, decode)(
                request, metadata=caller.metadata, timeout=10
            )
            next(stream)  # the first message: the stream opened for this caller
            stream.cancel()
        else:
            channel.unary_unary(row.method, encode, decode)(request, metadata=caller.metadata, timeout=10)
    except grpc.RpcError as err:
        return GRPC_OUTCOME.get(err.code(), err.code().name)
    return "ok"


def _call_grpc_web(http: httpx.Client, row: Row, caller: User, ids: dict[str, str]) -> str:
    """The call as a browser makes it (application/grpc-web+proto through the gateway)."""
    request_class, _ = _message_classes(row.method)
    body = json_format.ParseDict(fill(row.request, ids), request_class()).SerializeToString()
    headers = {"content-type": "application/grpc-web+proto", "x-grpc-web": "1", **caller.headers}
    with http.stream("POST", row.method, content=struct.pack(">BI", 0, len(body)) + body, headers=headers) as reply:
        status = reply.headers.get("grpc-status")  # a trailers-only answer
        buffer = b""
        for chunk in reply.iter_bytes():
            buffer += chunk
            while status is None and len(buffer) >= 5:
                flag, length = struct.unpack(">BI", buffer[:5])
                if len(buffer) < 5 + length:
                    break
                payload, buffer = buffer[5 : 5 + length], buffer[5 + length :]
                if not flag & 0x80:
                    if _streams(row):
                        return "ok"  # the first message of an open stream
                    continue
                for line in payload.decode().split("\r\n"):
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "grpc-status":
                        status = value.strip()
            if status is not None:
                break
    code = next(c for c in grpc.StatusCode if c.value[0] == int(status or 0))
    return GRPC_OUTCOME.get(code, code.name)


def _call_rest(http: httpx.Client, row: Row, caller: User, ids: dict[str, str]) -> str:
    verb, path = row.http.split(" ", 1)
    body = fill(row.body, ids) if row.body is not None else None
    if _streams(row):
        with http.stream(verb, fill(path, ids), headers=caller.headers) as reply:
            if reply.status_code == 200:
                # Server-Sent Events: an open stream's first event is its snapshot.
                first = next((line for line in reply.iter_lines() if line.startswith("data:")), "")
                return "ok" if first else "no event"
            return HTTP_OUTCOME.get(reply.status_code, str(reply.status_code))
    reply = http.request(verb, fill(path, ids), json=body, headers=caller.headers)
    return HTTP_OUTCOME.get(reply.status_code, str(reply.status_code))


def _import_stubs() -> None:
    # Registers every service in the default descriptor pool.
    from aiorch.auth.v1 import profiles_pb2_grpc  # noqa: F401, PLC0415
    from aiorch.jobs.v1 import files_pb2_grpc, jobs_pb2_grpc, results_pb2_grpc  # noqa: F401, PLC0415
    from aiorch.projects.v1 import projects_pb2_grpc  # noqa: F401, PLC0415


@pytest.mark.parametrize("transport", ["grpc", "grpc-web", "rest"])
def test_every_rpc_answers_as_the_matrix_says_in_every_cell(
    transport: str,
    quiet_workers: None,
    http: httpx.Client,
    gateway_channel: grpc.Channel,
    accounts: Accounts,
    figures: Figures,
) -> None:
    _import_stubs()
    outcomes: Counter[str] = Counter()
    mismatches = []
    for cell in CELLS:
        caller, ids = _build_world(http, accounts, cell)
        for row in MATRIX:
            if transport == "grpc":
                got = _call_grpc(gateway_channel, row, caller, ids)
            elif transport == "grpc-web":
                got = _call_grpc_web(http, row, caller, ids)
            else:
                got = _call_rest(http, row, caller, ids)
            outcomes[got] += 1
            if got != row.expected[cell]:
                mismatches.append(f"{cell} {row.name}: expected {row.expected[cell]}, got {got}")
    assert not mismatches, "\n".join(mismatches)
    total = sum(outcomes.values())
    summary = ", ".join(f"{outcome} {count}" for outcome, count in sorted(outcomes.items()))
    figures.add(f"{transport}: {len(MATRIX)} RPCs x {len(CELLS)} cells = {total} calls as expected ({summary})")
