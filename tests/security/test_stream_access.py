"""Open watch streams follow the caller's access as it changes (issue 13, finding 2).

A viewer member opens a stream (WatchJobs of every job, WatchJobs of the project, WatchJob of one job) over
gRPC, gRPC-web and Server-Sent Events, all through the gateway. Then their access goes away: they are removed
from the project, they log out, they are deactivated, their token expires, or the project is deleted. From
then on the owner's new jobs carry a secret text that must never reach the stream, and every stream that can
no longer read anything ends (UNAUTHENTICATED for a session that ended, NOT_FOUND for a project or job the
caller lost). The time from the change to the end of the stream is printed in the run summary.
"""

from __future__ import annotations

import struct
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import grpc
import httpx
import jwt
import pytest
from aiorch.auth.v1 import profiles_pb2, profiles_pb2_grpc, tokens_pb2, tokens_pb2_grpc
from aiorch.jobs.v1 import jobs_pb2, jobs_pb2_grpc, types_pb2
from aiorch.projects.v1 import projects_pb2, projects_pb2_grpc
from google.protobuf import json_format

from services.devstack.stack import Endpoints
from tests.figures import Figures
from tests.support import Accounts, User, forge, make_project, tts_job, unique

pytestmark = pytest.mark.stack

# A stream must notice a change this fast (the revocation watch itself takes ~0.1 s; the rest is margin for a
# loaded machine, not the figure, which is printed).
END_DEADLINE_SECONDS = 10.0
SECRET = "this-must-not-reach-a-stream-that-lost-access"


@dataclass
class StreamRecord:
    """What one open stream received, and how it ended."""

    texts: list[str] = field(default_factory=list)
    ended_at: float | None = None
    ended_wall: float | None = None  # time.time() at the end, to compare with a token's exp claim
    status: str = ""  # the gRPC status name it ended with ("" while open, "EOF" for an SSE end)
    opened: threading.Event = field(default_factory=threading.Event)

    def leaked(self) -> bool:
        return any(SECRET in text for text in self.texts)


def _job_text(job: dict[str, Any]) -> str:
    return f"{job.get('params', {})} {job.get('description', '')}"


def _grpc_reader(stack: Endpoints, token: str, which: str, target: str, record: StreamRecord) -> Callable[[], None]:
    def run() -> None:
        with grpc.insecure_channel(f"127.0.0.1:{stack.gateway_port}") as channel:
            stub = jobs_pb2_grpc.JobServiceStub(channel)
            metadata = (("authorization", f"Bearer {token}"),)
            calls = (
                stub.WatchJob(jobs_pb2.WatchJobRequest(id=target), metadata=metadata)
                if which == "job"
                else (stub.WatchJobs(jobs_pb2.WatchJobsRequest(project_id=target), metadata=metadata))
            )
            try:
                for update in calls:
                    record.opened.set()
                    record.texts.append(_job_text(json_format.MessageToDict(update.job)))
                record.status = "OK"
            except grpc.RpcError as exc:
                record.status = exc.code().name
            finally:
                record.ended_wall, record.ended_at = time.time(), time.monotonic()
                record.opened.set()

    return run


def _sse_reader(stack: Endpoints, token: str, which: str, target: str, record: StreamRecord) -> Callable[[], None]:
    def run() -> None:
        path = f"/api/jobs/{target}/watch" if which == "job" else "/api/watch/jobs"
        params = {"project_id": target} if which == "project" else {}
        headers = {"authorization": f"Bearer {token}"}
        try:
            with (
                httpx.Client(base_url=stack.gateway_url, timeout=httpx.Timeout(5, read=None)) as client,
                client.stream("GET", path, params=params, headers=headers) as reply,
            ):
                record.opened.set()
                if reply.status_code != 200:
                    record.status = f"HTTP {reply.status_code}"
                for line in reply.iter_lines():
                    if line.startswith("data:"):
                        record.texts.append(line)
        except httpx.RemoteProtocolError:
            record.status = "RESET"  # Envoy ends a chunked HTTP/1.1 response abruptly on a mid-stream error
        record.status = record.status or "EOF"
        record.ended_wall, record.ended_at = time.time(), time.monotonic()

    return run


def _grpc_web_reader(stack: Endpoints, token: str, which: str, target: str, record: StreamRecord) -> Callable[[], None]:
    def run() -> None:
        method, message = (
            ("WatchJob", jobs_pb2.WatchJobRequest(id=target))
            if which == "job"
            else ("WatchJobs", jobs_pb2.WatchJobsRequest(project_id=target))
        )
        body = message.SerializeToString()
        headers = {
            "content-type": "application/grpc-web+proto",
            "x-grpc-web": "1",
            "authorization": f"Bearer {token}",
        }
        buffer = b""
        frame = struct.pack(">BI", 0, len(body)) + body
        with (
            httpx.Client(base_url=stack.gateway_url, timeout=httpx.Timeout(5, read=None)) as client,
            client.stream("POST", f"/aiorch.jobs.v1.JobService/{method}", content=frame, headers=headers) as reply,
        ):
            record.opened.set()
            status = reply.headers.get("grpc-status")  # a trailers-only answer
            for chunk in reply.iter_bytes():
                buffer += chunk
                while len(buffer) >= 5:
                    flag, length = struct.unpack(">BI", buffer[:5])
                    if len(buffer) < 5 + length:
                        break
                    payload, buffer = buffer[5 : 5 + length], buffer[5 + length :]
                    if flag & 0x80:
                        for line in payload.decode().split("\r\n"):
                            name, _, value = line.partition(":")
                            if name.strip().lower() == "grpc-status":
                                status = value.strip()
                    else:
                        update = jobs_pb2.JobUpdate.FromString(payload)
                        record.texts.append(_job_text(json_format.MessageToDict(update.job)))
        record.status = grpc.StatusCode(_code_by_number(int(status or 0))).name if status else "EOF"
        record.ended_wall, record.ended_at = time.time(), time.monotonic()

    return run


def _code_by_number(number: int) -> Any:
    return next(code.value for code in grpc.StatusCode if code.value[0] == number)


READERS = {"grpc": _grpc_reader, "grpc-web": _grpc_web_reader, "sse": _sse_reader}


@dataclass
class Scene:
    """An owner's project with a viewer member watching it."""

    owner: User
    member: User
    project_id: str
    job_id: str  # a pending job of the project, for WatchJob


@pytest.fixture
def scene(http: httpx.Client, accounts: Accounts, workers_stopped: None) -> Scene:
    owner = accounts.create("editor")
    member = accounts.create("viewer")
    project = make_project(http, owner)
    added = http.post(
        f"/api/projects/{project['id']}/members/", json={"user_id": member.id, "role": "viewer"}, headers=owner.headers
    )
    assert added.status_code == 200, added.text
    job = tts_job(http, owner, project["id"], "A job the member may read.")
    return Scene(owner, member, project["id"], job["id"])


def _open(stack: Endpoints, scene: Scene, token: str) -> dict[tuple[str, str], StreamRecord]:
    """Every kind of stream over every transport, each in a thread; returns once all are open and caught up."""
    records: dict[tuple[str, str], StreamRecord] = {}
    targets = {"all": "", "project": scene.project_id, "job": scene.job_id}
    for transport, reader in READERS.items():
        for which, target in targets.items():
            record = StreamRecord()
            records[(transport, which)] = record
            threading.Thread(target=reader(stack, token, which, target, record), daemon=True).start()
    for key, record in records.items():
        assert record.opened.wait(20), f"{key} did not open"
    _wait(lambda: all(r.texts for r in records.values()), "every stream sees the first job", 20)
    return records


def _wait(condition: Callable[[], bool], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.02)


def _leak_probe(http: httpx.Client, scene: Scene) -> None:
    """The owner's changes after the loss of access: a new job and a change of the watched job."""
    tts_job(http, scene.owner, scene.project_id, f"{SECRET} in the text", description=SECRET)
    changed = http.patch(f"/api/jobs/{scene.job_id}", json={"description": SECRET}, headers=scene.owner.headers)
    assert changed.status_code == 200, changed.text


def _remove_member(http: httpx.Client, scene: Scene, accounts: Accounts, auth: grpc.Channel) -> None:
    removed = http.delete(f"/api/projects/{scene.project_id}/members/{scene.member.id}", headers=scene.owner.headers)
    assert removed.status_code == 200, removed.text


def _log_out(http: httpx.Client, scene: Scene, accounts: Accounts, auth: grpc.Channel) -> None:
    tokens_pb2_grpc.TokenServiceStub(auth).RevokeToken(tokens_pb2.RevokeTokenRequest(refresh=scene.member.refresh))


def _deactivate(http: httpx.Client, scene: Scene, accounts: Accounts, auth: grpc.Channel) -> None:
    profiles_pb2_grpc.ProfileServiceStub(auth).DeleteProfile(
        profiles_pb2.DeleteProfileRequest(id=scene.member.id), metadata=accounts.admin.metadata
    )


def _delete_project(http: httpx.Client, scene: Scene, accounts: Accounts, auth: grpc.Channel) -> None:
    deleted = http.delete(f"/api/projects/{scene.project_id}", headers=scene.owner.headers)
    assert deleted.status_code == 200, deleted.text


# event -> (how to cause it, the status each kind of stream must end with; None: it stays open, sending nothing)
EVENTS: dict[str, tuple[Callable[..., None], dict[str, str | None]]] = {
    "removed from the project": (_remove_member, {"all": None, "project": "NOT_FOUND", "job": "NOT_FOUND"}),
    "logged out": (_log_out, {"all": "UNAUTHENTICATED", "project": "UNAUTHENTICATED", "job": "UNAUTHENTICATED"}),
    "deactivated": (_deactivate, {"all": "UNAUTHENTICATED", "project": "UNAUTHENTICATED", "job": "UNAUTHENTICATED"}),
}


def _check_ends(
    records: dict[tuple[str, str], StreamRecord], expected: dict[str, str | None], changed_at: float
) -> list[float]:
    """Every stream that must end ended as expected; returns the seconds each took."""
    took = []
    for (transport, which), record in records.items():
        want = expected[which]
        if want is None:
            continue
        _wait(lambda r=record: r.ended_at is not None, f"{transport} {which} ends", END_DEADLINE_SECONDS)  # type: ignore[misc]
        assert record.ended_at is not None
        # An error in the middle of an SSE stream is lost to HTTP/1.1 clients (Envoy): the stream just ends.
        if transport != "sse":
            assert record.status == want, f"{transport} {which}: {record.status}, expected {want}"
        took.append(record.ended_at - changed_at)
    return took


@pytest.mark.parametrize("event", list(EVENTS))
def test_a_stream_stops_at_the_loss_of_access(
    event: str,
    scene: Scene,
    stack: Endpoints,
    http: httpx.Client,
    accounts: Accounts,
    auth_channel: grpc.Channel,
    figures: Figures,
) -> None:
    records = _open(stack, scene, scene.member.access)
    cause, expected = EVENTS[event]
    changed_at = time.monotonic()
    cause(http, scene, accounts, auth_channel)
    took = _check_ends(records, expected, changed_at)
    _leak_probe(http, scene)
    time.sleep(1.0)  # what would leak arrives within milliseconds
    leaked = [key for key, record in records.items() if record.leaked()]
    assert not leaked, f"streams that sent what the caller may no longer read: {leaked}"
    figures.add(
        f"open streams after '{event}': {len(took)} of {len(records)} ended within {max(took) * 1000:.0f} ms "
        f"(gRPC, gRPC-web, SSE); nothing sent after it by any of the {len(records)}"
    )


def test_a_stream_ends_when_its_token_expires(
    scene: Scene, stack: Endpoints, http: httpx.Client, figures: Figures
) -> None:
    short = forge(
        stack.private_key,
        {"sub": scene.member.id, "role": "viewer", "fam": str(uuid.uuid4())},
        lifetime=timedelta(seconds=4),
    )
    expires_at = float(jwt.decode(short, options={"verify_signature": False})["exp"])
    records = _open(stack, scene, short)
    _check_ends(records, dict.fromkeys(("all", "project", "job"), "UNAUTHENTICATED"), time.monotonic())
    late = [record.ended_wall - expires_at for record in records.values() if record.ended_wall is not None]
    assert min(late) > -0.5, "a stream ended well before its token expired"
    _leak_probe(http, scene)
    time.sleep(1.0)
    assert not [key for key, record in records.items() if record.leaked()]
    figures.add(f"token expiry: all {len(records)} open streams ended within {max(late) * 1000:.0f} ms after it")


def test_a_deleted_project_sends_nothing_more(
    scene: Scene, stack: Endpoints, http: httpx.Client, accounts: Accounts, auth_channel: grpc.Channel
) -> None:
    records = _open(stack, scene, scene.member.access)
    changed_at = time.monotonic()
    _delete_project(http, scene, accounts, auth_channel)
    _check_ends(records, {"all": None, "project": "NOT_FOUND", "job": "NOT_FOUND"}, changed_at)
    assert not [key for key, record in records.items() if record.leaked()]


def test_a_watch_of_a_project_one_cannot_read_answers_404(
    http: httpx.Client, accounts: Accounts, stack: Endpoints
) -> None:
    owner, stranger = accounts.create("editor"), accounts.create("editor")
    project = make_project(http, owner)
    with http.stream("GET", "/api/watch/jobs", params={"project_id": project["id"]}, headers=stranger.headers) as reply:
        assert reply.status_code == 404


def test_a_service_account_watches_every_project(
    http: httpx.Client, accounts: Accounts, stack: Endpoints, workers_stopped: None
) -> None:
    owner = accounts.create("editor")
    service = accounts.create("service")
    project = make_project(http, owner, unique("svc"))
    record = StreamRecord()
    threading.Thread(target=_grpc_reader(stack, service.access, "all", "", record), daemon=True).start()
    time.sleep(1.0)  # the stream opens (gRPC sends nothing until the first change of a visible job)
    tts_job(http, owner, project["id"], "A job a service account may read.")
    _wait(lambda: any("service account may read" in t for t in record.texts), "the job arrives", 20)


def test_the_first_message_holds_every_pending_job_beyond_one_page(
    stack: Endpoints, accounts: Accounts, gateway_channel: grpc.Channel, workers_stopped: None
) -> None:
    owner = accounts.create("editor")
    stub = jobs_pb2_grpc.JobServiceStub(gateway_channel)
    project = projects_pb2_grpc.ProjectServiceStub(gateway_channel).CreateProject(
        projects_pb2.CreateProjectRequest(name=unique("many")), metadata=owner.metadata
    )
    created = set()
    for index in range(520):
        job = stub.CreateJob(
            jobs_pb2.CreateJobRequest(
                project_id=project.id,
                type=types_pb2.TTS,
                params=types_pb2.JobParams(tts=types_pb2.TtsParams(text=f"job {index}")),
            ),
            metadata=owner.metadata,
        )
        created.add(job.id)
    seen: set[str] = set()
    stream = stub.WatchJobs(jobs_pb2.WatchJobsRequest(project_id=project.id), metadata=owner.metadata, timeout=60)
    for update in stream:
        seen.add(update.job.id)
        if seen >= created:
            break
    assert created <= seen
