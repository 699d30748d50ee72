"""Field limits: every string field of every request has one, and the largest job they allow fits every path.

The paths a job travels: its create's JSON body into the gateway (held whole up to a limit), NATS
broadcasts (JobUpdate, max_payload), and the gateway's transcoder, which buffers a unary response (GetJob)
and each watch message whole. A limit raised past one of them fails `test_the_largest_*` here instead of
breaking a project in production.
"""

from __future__ import annotations

import inspect
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiorch.jobs.v1 import events_pb2, files_pb2, jobs_pb2, results_pb2, types_pb2
from google.api import httpbody_pb2  # noqa: F401  (registers HttpBody for the name lookups)
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, struct_pb2, timestamp_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from gateway.render import GatewayLimits
from services.common import errors
from services.common.field_limits import (
    LIMITS,
    LIMITS_BY_NAME,
    MESSAGE_BYTES,
    check_field_limits,
    clip_to_limits,
    limit_of,
)
from services.jobs.book import JobBook
from tests.request_fields import TextField, text_fields

ROOT = Path(__file__).resolve().parents[2]
TEXT_FIELDS = text_fields()
NATS_DEFAULT_MAX_PAYLOAD = 1024 * 1024
# Envoy's per_connection_buffer_limit_bytes default, which bounds what the JSON transcoder buffers of a response
# (a 1.1 MiB job answered 500 on GetJob).
ENVOY_DEFAULT_BUFFER = 1024 * 1024
# Characters that cost the most bytes: 4 in UTF-8 (protobuf), 6 as a JSON escape (\u0001), and ones some
# JSON writers escape (line separator, soft hyphen, quote, '<').
COSTLY_CHARACTERS = ("a", "\x01", "\u2028", "\u00ad", '"', "<", "\U0001f600", "\U000e0020")
# Job fields a client or a worker writes, and the request fields they come from.
JOB_FIELD_SOURCES = {
    "name": ("aiorch.jobs.v1.CreateJobRequest.name", "aiorch.jobs.v1.UpdateJobRequest.name"),
    "description": ("aiorch.jobs.v1.CreateJobRequest.description", "aiorch.jobs.v1.UpdateJobRequest.description"),
    "input_url": ("aiorch.jobs.v1.CreateJobRequest.input_url",),
    "client_request_id": ("aiorch.jobs.v1.CreateJobRequest.client_request_id",),
    "message": ("aiorch.jobs.v1.UpdateProgressRequest.message", "aiorch.jobs.v1.JobProgress.message"),
    "error": ("aiorch.jobs.v1.JobFailed.reason",),
    "worker_id": ("aiorch.jobs.v1.JobEvent.worker_id",),
}
# Job fields the service fills with UUIDs.
JOB_ID_FIELDS = ("id", "project_id", "input_file_id", "owner", "result_id")


def _field(full_name: str) -> FieldDescriptor:
    return descriptor_pool.Default().FindFieldByName(full_name)


def test_every_named_limit_names_a_field() -> None:
    for full_name in [*LIMITS, *MESSAGE_BYTES]:
        assert _field(full_name).full_name == full_name


def test_every_limit_by_name_is_used_by_a_request_field() -> None:
    names = {text_field.field.name for text_field in TEXT_FIELDS}
    assert set(LIMITS_BY_NAME) <= names


def test_a_field_without_a_limit_of_its_own_gets_the_default() -> None:
    field = jobs_pb2.JobUpdate.DESCRIPTOR.fields_by_name["log_lines"]
    assert limit_of(field).chars == 256


def _proto_comments() -> dict[str, str]:
    """The leading comment of every field of a top-level message of our protos, by field full name."""
    files = descriptor_pb2.FileDescriptorSet.FromString((ROOT / "gen/descriptor.pb").read_bytes()).file
    comments = {}
    for file in files:
        for location in file.source_code_info.location:
            path = list(location.path)
            # 4: message_type, 2: field (descriptor.proto's field numbers)
            if len(path) == 4 and path[0] == 4 and path[2] == 2:
                message = file.message_type[path[1]]
                name = f"{file.package}.{message.name}.{message.field[path[3]].name}"
                comments[name] = " ".join(location.leading_comments.split())
    return comments


def test_every_field_of_our_protos_with_a_limit_of_its_own_states_it_in_its_comment() -> None:
    # The comments are the API's documentation (OpenAPI, the console), so a client reads the limit there.
    comments = _proto_comments()
    for full_name, limit in LIMITS.items():
        if full_name.startswith("aiorch."):
            assert f"At most {limit.chars:,} characters" in comments[full_name] or (
                f"At most {limit.items} values of {limit.chars:,} characters" in comments[full_name]
            ), f"{full_name}: {comments[full_name]!r}"


@pytest.mark.parametrize("text_field", TEXT_FIELDS, ids=lambda f: f.name)
def test_a_value_at_its_limit_passes(text_field: TextField) -> None:
    check_field_limits(text_field.message("a" * limit_of(text_field.field).chars))


@pytest.mark.parametrize("text_field", TEXT_FIELDS, ids=lambda f: f.name)
def test_a_value_one_over_its_limit_is_refused_naming_the_field_and_its_limit(text_field: TextField) -> None:
    limit = limit_of(text_field.field).chars
    with pytest.raises(errors.InvalidArgument) as refused:
        check_field_limits(text_field.message("\U0001f600" * (limit + 1)))
    assert text_field.field.name in refused.value.message
    assert f"at most {limit} characters" in refused.value.message


def test_a_repeated_field_with_more_values_than_its_limit_is_refused() -> None:
    formats = ["srt"] * (limit_of(types_pb2.SttParams.DESCRIPTOR.fields_by_name["formats"]).items + 1)
    request = jobs_pb2.CreateJobRequest(params=types_pb2.JobParams(stt=types_pb2.SttParams(formats=formats)))
    with pytest.raises(errors.InvalidArgument, match=r"params\.stt\.formats may hold at most 8 values"):
        check_field_limits(request)


def test_result_meta_is_bounded_as_a_whole_however_deep_it_nests() -> None:
    meta = struct_pb2.Struct()
    level = meta
    for depth in range(20):
        level.fields["text"].string_value = "x" * 8000
        level = level.fields[f"level{depth}"].struct_value
    with pytest.raises(errors.InvalidArgument, match=r"meta must be at most 131072 bytes"):
        check_field_limits(results_pb2.CreateJobResultRequest(meta=meta))


def test_upload_chunks_are_bytes_and_not_limited() -> None:
    check_field_limits(files_pb2.UploadFileRequest(chunk=b"\x00" * 1_000_000))


def test_clipping_cuts_a_workers_texts_to_their_limits() -> None:
    event = events_pb2.JobEvent(worker_id="w" * 1000, failed=events_pb2.JobFailed(reason="r" * 100_000))
    clip_to_limits(event)
    assert len(event.worker_id) == limit_of(events_pb2.JobEvent.DESCRIPTOR.fields_by_name["worker_id"]).chars
    assert len(event.failed.reason) == limit_of(events_pb2.JobFailed.DESCRIPTOR.fields_by_name["reason"]).chars
    check_field_limits(event)


def test_clipping_leaves_result_meta_whole() -> None:
    # A long transcript is the result itself: cutting it would store a wrong result.
    meta = struct_pb2.Struct()
    meta.update({"text": "x" * 200_000, "segments": [{"text": "y" * 40_000}]})
    event = events_pb2.JobEvent(completed=events_pb2.JobCompleted(output_keys=["results/job/out.json"], meta=meta))
    clip_to_limits(event)
    assert event.completed.meta == meta


def _longest(full_names: tuple[str, ...]) -> int:
    return max(limit_of(_field(name)).chars for name in full_names)


def _largest_params(character: str) -> types_pb2.JobParams:
    """The parameters of the type whose fields at their limits serialise largest."""
    candidates = []
    for variant in types_pb2.JobParams.DESCRIPTOR.oneofs_by_name["params"].fields:
        params = types_pb2.JobParams()
        inner = getattr(params, variant.name)
        inner.SetInParent()
        for field in inner.DESCRIPTOR.fields:
            if field.type != FieldDescriptor.TYPE_STRING:
                continue
            limit = limit_of(field)
            if field.is_repeated:
                getattr(inner, field.name).extend([character * limit.chars] * limit.items)
            else:
                setattr(inner, field.name, character * limit.chars)
        candidates.append(params)
    return max(candidates, key=lambda params: params.ByteSize())


def _largest_job(character: str) -> jobs_pb2.Job:
    """A job with every field a client or worker writes at its limit, written in `character`."""
    job_strings = {f.name for f in jobs_pb2.Job.DESCRIPTOR.fields if f.type == FieldDescriptor.TYPE_STRING}
    # A new string field on Job must say where its value comes from, so its limit is counted here.
    assert job_strings == set(JOB_FIELD_SOURCES) | set(JOB_ID_FIELDS)
    now = timestamp_pb2.Timestamp(seconds=4_102_444_800, nanos=999_999_999)
    job = jobs_pb2.Job(
        type=types_pb2.AI_STORIES,
        status=types_pb2.FAILED,
        progress=100,
        attempts=2**31 - 1,
        params=_largest_params(character),
        created_at=now,
        started_at=now,
        finished_at=now,
        updated_at=now,
    )
    for name in JOB_ID_FIELDS:
        setattr(job, name, str(uuid.uuid4()))
    for name, sources in JOB_FIELD_SOURCES.items():
        setattr(job, name, character * _longest(sources))
    return job


def _largest_update(character: str) -> jobs_pb2.JobUpdate:
    """The largest watch message: the largest job and a first message's log lines at their limit."""
    lines = inspect.signature(JobBook.recent_logs).parameters["limit"].default
    line = character * limit_of(events_pb2.JobLog.DESCRIPTOR.fields_by_name["line"]).chars
    return jobs_pb2.JobUpdate(job=_largest_job(character), log_lines=[line] * lines, version=2**63 - 1)


def _largest_create_request(character: str) -> jobs_pb2.CreateJobRequest:
    """A CreateJob request with every text field at its limit (the largest parameters of any type)."""
    request = jobs_pb2.CreateJobRequest(project_id=str(uuid.uuid4()), type=types_pb2.TTS)
    request.params.CopyFrom(_largest_params(character))
    for field in jobs_pb2.CreateJobRequest.DESCRIPTOR.fields:
        if field.type == FieldDescriptor.TYPE_STRING and field.name != "project_id":
            setattr(request, field.name, character * limit_of(field).chars)
    return request


def _json_bytes(message: Message) -> int:
    """The size of `message` as compact JSON in UTF-8, as a client sends it (control characters escaped)."""
    text = json_format.MessageToJson(message, preserving_proto_field_name=True, indent=None, ensure_ascii=False)
    return len(text.encode())


def _nats_max_payload() -> int:
    """The smallest max_payload of the NATS configurations (Kubernetes base and dev; the local stack: default)."""
    sizes = [NATS_DEFAULT_MAX_PAYLOAD]
    units = {"": 1, "KB": 1024, "MB": 1024 * 1024}
    for path in [ROOT / "deploy/k8s/base/nats.yaml", ROOT / "deploy/k8s/overlays/dev/kustomization.yaml"]:
        for number, unit in re.findall(r"max_payload:\s*(\d+)\s*(KB|MB)?", path.read_text()):
            sizes.append(int(number) * units[unit.upper()])
    return min(sizes)


def _envoy_buffer() -> int:
    """The smallest connection buffer the gateway configures (Envoy's default when it sets none)."""
    template = (ROOT / "gateway/envoy.yaml.tmpl").read_text()
    found = re.findall(r"per_connection_buffer_limit_bytes:\s*(\d+)", template)
    return min([ENVOY_DEFAULT_BUFFER, *map(int, found)])


def test_the_largest_job_update_fits_a_nats_message(figures_line: list[str]) -> None:
    size = max(_largest_update(c).ByteSize() for c in COSTLY_CHARACTERS)
    figures_line.append(f"largest JobUpdate (protobuf): {size} bytes of NATS max_payload {_nats_max_payload()}")
    assert size < _nats_max_payload()


def test_the_largest_job_and_watch_message_fit_the_gateway_response_buffer(figures_line: list[str]) -> None:
    # The transcoder holds a response's gRPC message whole before it prints it; the JSON it prints may be
    # larger (12 bytes for a character it escapes as a surrogate pair) and is streamed out.
    job = max(_largest_job(c).ByteSize() for c in COSTLY_CHARACTERS)
    update = max(_largest_update(c).ByteSize() for c in COSTLY_CHARACTERS)
    figures_line.append(f"largest Job {job} bytes, JobUpdate {update} bytes, of Envoy's buffer {_envoy_buffer()}")
    assert max(job, update) < _envoy_buffer()


def test_the_largest_create_request_fits_the_gateway_json_body_limit(figures_line: list[str]) -> None:
    size = max(_json_bytes(_largest_create_request(c)) for c in COSTLY_CHARACTERS)
    limit = GatewayLimits().max_json_body_bytes
    figures_line.append(f"largest CreateJob body (JSON): {size} bytes of the gateway's {limit}")
    assert size < limit


@pytest.fixture
def figures_line(capsys: pytest.CaptureFixture[str]) -> Iterator[list[str]]:
    """Lines printed after the test, to read the margins in any run."""
    lines: list[str] = []
    yield lines
    with capsys.disabled():
        for line in lines:
            print(line)
