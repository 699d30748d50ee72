"""Fuzzing: every RPC with generated protobuf messages, and malformed REST bodies through the gateway.

No answer may be INTERNAL or UNKNOWN, no service may fall over, and no error message may carry a
stack trace or a library's internals. Malformed JSON, wrong types, unknown enum values and huge
numbers through the gateway answer 4xx.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

import grpc
import httpx
import pytest
from aiorch.auth.v1 import profiles_pb2_grpc, settings_pb2_grpc, tokens_pb2_grpc  # noqa: F401
from aiorch.jobs.v1 import files_pb2_grpc, jobs_pb2_grpc, results_pb2_grpc  # noqa: F401
from aiorch.projects.v1 import projects_pb2_grpc  # noqa: F401
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.common.peer import CLIENT_ADDRESS_HEADER
from services.devstack.stack import Endpoints
from tests.figures import Figures
from tests.security.protobuf_strategies import messages
from tests.support import Accounts, User

SERVICES = {
    "auth": ("aiorch.auth.v1.TokenService", "aiorch.auth.v1.ProfileService", "aiorch.auth.v1.SettingsService"),
    "projects": ("aiorch.projects.v1.ProjectService",),
    "jobs": ("aiorch.jobs.v1.JobService", "aiorch.jobs.v1.FileService", "aiorch.jobs.v1.JobResultService"),
}
METHODS = [
    (backend, method)
    for backend, services in SERVICES.items()
    for service in services
    for method in descriptor_pool.Default().FindServiceByName(service).methods
]
METHOD_IDS = [f"{m.containing_service.name}.{m.name}" for _, m in METHODS]
EXAMPLES_PER_RPC = 12
STREAM_EXAMPLES = 4
# What a stack trace or a leaked library error looks like in a status message.
LEAKS = ("Traceback", 'File "', ".py", "psycopg", "sqlalchemy", "Exception")
# Login failures land on this documentation address, not on the tests' own 127.0.0.1.
FUZZ_PEER = (CLIENT_ADDRESS_HEADER, "203.0.113.9")

_CODES: Counter[str] = Counter()


@pytest.fixture(scope="module")
def channels(stack: Endpoints) -> Iterator[dict[str, grpc.Channel]]:
    """A channel straight to each service."""
    opened = {name: grpc.insecure_channel(stack.grpc[name]) for name in SERVICES}
    yield opened
    for channel in opened.values():
        channel.close()


@pytest.fixture(scope="module")
def callers(accounts: Accounts) -> list[User]:
    """An admin of its own (fuzzing may change what it can reach) and an editor."""
    return [accounts.create("admin"), accounts.create("editor")]


def _call(channel: grpc.Channel, method: MethodDescriptor, request: Message, caller: User) -> grpc.StatusCode:
    path = f"/{method.containing_service.full_name}/{method.name}"
    request_class = message_factory.GetMessageClass(method.input_type)
    response_class = message_factory.GetMessageClass(method.output_type)
    metadata = (*caller.metadata, FUZZ_PEER)
    serializer, deserializer = request_class.SerializeToString, response_class.FromString
    try:
        if method.client_streaming:
            stream = channel.stream_unary(path, request_serializer=serializer, response_deserializer=deserializer)
            stream(iter([request, request]), metadata=metadata, timeout=10)
        elif method.server_streaming:
            call = channel.unary_stream(path, request_serializer=serializer, response_deserializer=deserializer)
            for _ in call(request, metadata=metadata, timeout=0.5):
                break
        else:
            unary = channel.unary_unary(path, request_serializer=serializer, response_deserializer=deserializer)
            unary(request, metadata=metadata, timeout=10)
    except grpc.RpcError as err:
        details = err.details() or ""
        leaked = [word for word in LEAKS if word in details]
        assert not leaked, f"{path}: {err.code().name} message leaks {leaked}: {details[:300]}"
        code: grpc.StatusCode = err.code()
        return code
    return grpc.StatusCode.OK


@pytest.mark.parametrize(
    ("backend", "method"), METHODS, ids=[f"{m.containing_service.name}.{m.name}" for _, m in METHODS]
)
def test_generated_messages_never_break_an_rpc(
    backend: str,
    method: MethodDescriptor,
    channels: dict[str, grpc.Channel],
    callers: list[User],
) -> None:
    streaming = method.server_streaming

    @settings(
        max_examples=STREAM_EXAMPLES if streaming else EXAMPLES_PER_RPC,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(request=messages(method.input_type), caller=st.sampled_from(callers))
    def attempt(request: Message, caller: User) -> None:
        code = _call(channels[backend], method, request, caller)
        _CODES[code.name] += 1
        allowed_timeout = streaming and code is grpc.StatusCode.DEADLINE_EXCEEDED
        assert code not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.UNAVAILABLE) or (
            allowed_timeout
        ), f"{method.full_name}: {code.name} for {request}"

    attempt()


def test_every_service_still_serves_after_the_fuzzing(
    channels: dict[str, grpc.Channel], figures: Figures, request: pytest.FixtureRequest
) -> None:
    for name, channel in channels.items():
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING, name
    total = sum(_CODES.values())
    codes = ", ".join(f"{name} {count}" for name, count in _CODES.most_common())
    broken = _CODES["INTERNAL"] + _CODES["UNKNOWN"]
    figures.add(f"gRPC: {len(METHODS)} RPCs, {total} generated messages, {broken} INTERNAL or UNKNOWN; codes: {codes}")


# REST bodies the JSON transcoder or the service must refuse with 4xx (never 5xx).
MALFORMED = [
    ("POST", "/api/projects/", b"{not json"),
    ("POST", "/api/projects/", b'{"name": 42}'),
    ("POST", "/api/projects/", b'{"name": ["a", "b"]}'),
    ("POST", "/api/projects/", b"[]"),
    ("POST", "/api/projects/", b'"just a string"'),
    ("POST", "/api/projects/", b'{"name": "\\u0000"}'),
    ("POST", "/api/jobs/", b'{"project_id": "x", "type": "NOT_A_TYPE"}'),
    ("POST", "/api/jobs/", b'{"project_id": "x", "type": 99999}'),
    ("POST", "/api/jobs/", b'{"project_id": "x", "type": "TTS", "params": {"tts": {"rate": 1e309}}}'),
    ("POST", "/api/jobs/", b'{"project_id": "x", "type": "TTS", "params": {"tts": {"rate": 99999999999999999999}}}'),
    ("POST", "/api/jobs/", b'{"project_id": "x", "type": "TTS", "params": "tts"}'),
    ("GET", "/api/jobs/?page_size=99999999999999999999", None),
    ("GET", "/api/jobs/?page_size=-1", None),
    ("GET", "/api/jobs/?status=EXPLODED", None),
    ("GET", "/api/jobs/?created_after=yesterday", None),
    ("GET", "/api/projects/?ordering=name;DROP TABLE projects", None),
    ("PATCH", "/api/jobs/00000000-0000-0000-0000-000000000000/update_progress/", b'{"progress": 1e400}'),
    ("PATCH", "/api/jobs/00000000-0000-0000-0000-000000000000/update_progress/", b'{"progress": "ten"}'),
    ("POST", "/api/settings/", b'{"key": "k", "value": "1", "value_type": "integer", "user": 7}'),
    ("POST", "/api/token/", b'{"username": {"$ne": null}, "password": {"$ne": null}}'),
    ("POST", "/api/token/", b"\xff\xfe\x00garbage"),
    ("POST", "/api/token/refresh/", b'{"refresh": 12345}'),
]


def test_malformed_rest_bodies_answer_4xx(http: httpx.Client, accounts: Accounts, figures: Figures) -> None:
    editor = accounts.create("editor")
    started = time.monotonic()
    statuses: Counter[int] = Counter()
    for verb, path, body in MALFORMED:
        headers = {**editor.headers, "content-type": "application/json", "x-forwarded-for": FUZZ_PEER[1]}
        reply = http.request(verb, path, content=body, headers=headers)
        assert 400 <= reply.status_code < 500, f"{verb} {path} {body!r}: {reply.status_code} {reply.text[:200]}"
        assert not [word for word in LEAKS if word in reply.text], reply.text[:300]
        statuses[reply.status_code] += 1
    codes = ", ".join(f"{code} x{count}" for code, count in sorted(statuses.items()))
    figures.add(f"REST: {len(MALFORMED)} malformed requests all 4xx ({codes}) in {time.monotonic() - started:.1f} s")
