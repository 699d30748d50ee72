"""One length limit per text field of every request message, and the check that enforces them.

A value nobody bounded is stored and then carried by paths that do have bounds: a 1.1 MiB job
description was stored, and afterwards GetJob and ListJobs answered 500 (Envoy's transcoder buffer)
and the job's live updates failed ("nats: maximum payload exceeded"). So every string field of every
request has a limit, written here once:

- `LIMITS` names a field by its full name (`aiorch.jobs.v1.CreateJobRequest.description`);
- `LIMITS_BY_NAME` gives fields that mean the same thing everywhere (`id`, `page_token`) one limit;
- any other string field gets `DEFAULT_LIMIT`, so a field added tomorrow is bounded from its first day.

Limits count characters (code points, Python's `len`), as the error message says to the caller.
tests/unit/test_field_limits.py builds the largest job these limits allow and checks that it fits
NATS's max_payload and Envoy's buffer, so raising a limit past a path that carries it fails there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sized
from dataclasses import dataclass
from enum import Enum
from typing import cast

from aiorch.jobs.v1 import types_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from services.common import errors, job_types


@dataclass(frozen=True)
class TextLimit:
    """How long one value of a string field may be, and how many values a repeated or map field may hold."""

    chars: int
    # Of a repeated or map field only (a repeated message field is limited by this alone).
    items: int = 100


# Any string field not named below: enough for a name, a code or a short label.
DEFAULT_LIMIT = TextLimit(256)


def _job_text_limits() -> dict[str, TextLimit]:
    """The text each job type speaks, limited where the job-type registry says (written there once)."""
    members = types_pb2.JobParams.DESCRIPTOR.fields_by_name
    limits = {}
    for spec in job_types.JOB_TYPES:
        params = members[spec.params_field].message_type
        if spec.text_field is not None and spec.max_text_chars is not None and params is not None:
            limits[f"{params.full_name}.{spec.text_field}"] = TextLimit(spec.max_text_chars)
    return limits


LIMITS_BY_NAME: Mapping[str, TextLimit] = {
    # Object ids are UUIDs (36 characters); a longer one cannot name anything.
    "id": TextLimit(64),
    "project_id": TextLimit(64),
    "job_id": TextLimit(64),
    "user_id": TextLimit(64),
    "input_file_id": TextLimit(64),
    "owner": TextLimit(64),
    "user": TextLimit(64),
    # A keyset token holds a sort value (a name of up to 200 characters, JSON-escaped: 3,330 characters at
    # most once base64'd) and an id.
    "page_token": TextLimit(4096),
    "search": TextLimit(200),
    "ordering": TextLimit(32),
    "name": TextLimit(200),
    "role": TextLimit(16),
    "language": TextLimit(35),
    "source_language": TextLimit(35),
    "target_language": TextLimit(35),
    "voice": TextLimit(100),
    "format": TextLimit(16),
}

LIMITS: Mapping[str, TextLimit] = {
    # auth: the columns' own sizes (services/auth/models.py) and the password rule (passwords.MAX_LENGTH).
    "aiorch.auth.v1.ObtainTokenRequest.username": TextLimit(150),
    "aiorch.auth.v1.ObtainTokenRequest.password": TextLimit(1024),
    "aiorch.auth.v1.RefreshTokenRequest.refresh": TextLimit(4096),
    "aiorch.auth.v1.RevokeTokenRequest.refresh": TextLimit(4096),
    "aiorch.auth.v1.VerifyTokenRequest.token": TextLimit(4096),
    "aiorch.auth.v1.CreateProfileRequest.username": TextLimit(150),
    "aiorch.auth.v1.CreateProfileRequest.email": TextLimit(254),
    "aiorch.auth.v1.CreateProfileRequest.password": TextLimit(1024),
    "aiorch.auth.v1.UpdateProfileRequest.email": TextLimit(254),
    "aiorch.auth.v1.SetPasswordRequest.old_password": TextLimit(1024),
    "aiorch.auth.v1.SetPasswordRequest.new_password": TextLimit(1024),
    "aiorch.auth.v1.CreateSettingRequest.key": TextLimit(128),
    "aiorch.auth.v1.ListSettingsRequest.key": TextLimit(128),
    # settings_store.MAX_VALUE_LENGTH.
    "aiorch.auth.v1.CreateSettingRequest.value": TextLimit(64 * 1024),
    "aiorch.auth.v1.UpdateSettingRequest.value": TextLimit(64 * 1024),
    "aiorch.auth.v1.CreateSettingRequest.value_type": TextLimit(16),
    "aiorch.auth.v1.UpdateSettingRequest.value_type": TextLimit(16),
    "aiorch.auth.v1.CreateSettingRequest.description": TextLimit(2000),
    "aiorch.auth.v1.UpdateSettingRequest.description": TextLimit(2000),
    # projects: catalog.MAX_DESCRIPTION_LENGTH.
    "aiorch.projects.v1.CreateProjectRequest.description": TextLimit(64 * 1024),
    "aiorch.projects.v1.UpdateProjectRequest.description": TextLimit(64 * 1024),
    # jobs: what a job stores is carried whole by GetJob, ListJobs, watch streams and NATS broadcasts.
    "aiorch.jobs.v1.CreateJobRequest.description": TextLimit(10_000),
    "aiorch.jobs.v1.UpdateJobRequest.description": TextLimit(10_000),
    "aiorch.jobs.v1.CreateJobRequest.input_url": TextLimit(2048),
    "aiorch.jobs.v1.CreateJobRequest.client_request_id": TextLimit(200),
    "aiorch.jobs.v1.UpdateProgressRequest.message": TextLimit(1000),
    # The texts to speak (TtsParams.text, VoiceCloningParams.text, AiStoriesParams.script).
    **_job_text_limits(),
    "aiorch.jobs.v1.SttParams.formats": TextLimit(16, items=8),
    "aiorch.jobs.v1.SttParams.model": TextLimit(32),
    "aiorch.jobs.v1.SttParams.task": TextLimit(16),
    "aiorch.jobs.v1.SttParams.prompt": TextLimit(1000),
    # Uploads: the name is cut to its last part and 255 characters (files.safe_filename), so a client's
    # full path is accepted; the media type is a column of 127.
    "aiorch.jobs.v1.UploadFileHeader.filename": TextLimit(4096),
    "aiorch.jobs.v1.UploadRawFileRequest.filename": TextLimit(4096),
    "aiorch.jobs.v1.UploadFileHeader.content_type": TextLimit(127),
    "google.api.HttpBody.content_type": TextLimit(127),
    "google.protobuf.Any.type_url": TextLimit(2048),
    "aiorch.jobs.v1.CreateJobResultRequest.result_url": TextLimit(2048),
    "aiorch.jobs.v1.UpdateJobResultRequest.result_url": TextLimit(2048),
    "aiorch.jobs.v1.DownloadResultRequest.file": TextLimit(512),
    # Result meta (Struct): keys, string values, entries; the whole is bounded in MESSAGE_BYTES.
    "google.protobuf.Struct.fields": TextLimit(256, items=1000),
    "google.protobuf.Value.string_value": TextLimit(30_000),
    "google.protobuf.ListValue.values": TextLimit(DEFAULT_LIMIT.chars, items=10_000),
    # Worker events (NATS, not RPC): the texts the intake stores into a job and broadcasts with it. Workers
    # cut them to these limits before publishing (clip_to_limits); result meta is not cut.
    "aiorch.jobs.v1.JobEvent.worker_id": TextLimit(200),
    "aiorch.jobs.v1.JobProgress.message": TextLimit(1000),
    "aiorch.jobs.v1.JobLog.line": TextLimit(300),
    "aiorch.jobs.v1.JobLog.level": TextLimit(16),
    "aiorch.jobs.v1.JobFailed.reason": TextLimit(2000),
    "aiorch.jobs.v1.JobCompleted.output_keys": TextLimit(512, items=100),
}

# Message fields bounded by their serialised size: a Struct nests without end, so its parts' limits
# do not bound it. Result meta is read back whole through the gateway's buffer.
MESSAGE_BYTES: Mapping[str, int] = {
    "aiorch.jobs.v1.CreateJobResultRequest.meta": 128 * 1024,
    "aiorch.jobs.v1.UpdateJobResultRequest.meta": 128 * 1024,
}


def limit_of(field: FieldDescriptor) -> TextLimit:
    """The limit of one field: its own, else its name's, else the default."""
    return LIMITS.get(field.full_name) or LIMITS_BY_NAME.get(field.name) or DEFAULT_LIMIT


class _Kind(Enum):
    TEXT = "text"  # a string
    TEXTS = "texts"  # a repeated string
    MESSAGE = "message"  # a message, walked
    MESSAGES = "messages"  # a repeated message, walked
    MAP = "map"  # a map: keys (and string values) checked, message values walked


@dataclass(frozen=True)
class _FieldCheck:
    """What to check of one field, worked out once per message type."""

    name: str
    kind: _Kind
    limit: TextLimit
    # Of a map: TEXT when its values are strings (checked like its keys); message values are walked.
    map_value_kind: _Kind | None = None
    max_bytes: int | None = None


# Per message type (by descriptor), its fields that need a check. Built at first use of each type,
# so a call costs one ListFields and a dict lookup per field it sets, not a walk of the descriptors.
_PLANS: dict[Descriptor, dict[FieldDescriptor, _FieldCheck]] = {}


def _plan(descriptor: Descriptor) -> dict[FieldDescriptor, _FieldCheck]:
    plan = _PLANS.get(descriptor)
    if plan is None:
        plan = {field: check for field in descriptor.fields if (check := _field_check(field)) is not None}
        _PLANS[descriptor] = plan
    return plan


def _field_check(field: FieldDescriptor) -> _FieldCheck | None:
    limit = limit_of(field)
    if field.type == FieldDescriptor.TYPE_STRING:
        return _FieldCheck(field.name, _Kind.TEXTS if _repeated(field) else _Kind.TEXT, limit)
    entry = field.message_type
    if field.type != FieldDescriptor.TYPE_MESSAGE or entry is None:
        return None  # numbers, enums and bytes (upload chunks) carry no text
    if entry.GetOptions().map_entry:
        # Keys are checked when they are strings; string values too; message values are walked.
        value_type = entry.fields_by_name["value"].type
        value_kind = _Kind.TEXT if value_type == FieldDescriptor.TYPE_STRING else None
        return _FieldCheck(field.name, _Kind.MAP, limit, map_value_kind=value_kind)
    kind = _Kind.MESSAGES if _repeated(field) else _Kind.MESSAGE
    return _FieldCheck(field.name, kind, limit, max_bytes=MESSAGE_BYTES.get(field.full_name))


def _repeated(field: FieldDescriptor) -> bool:
    return bool(field.is_repeated)


def check_field_limits(message: Message) -> None:
    """Raise InvalidArgument naming the first field of `message` (nested ones too) that is over its limit."""
    _check(message, "")


def clip_to_limits(message: Message) -> None:
    """Cut every string of `message` (nested messages too, not map entries or counts) to its limit, in place.

    For text our own components write and must not lose a whole message over (a worker's failure reason
    quoting a long tool output); requests from clients are refused instead (check_field_limits).
    """
    plan = _plan(cast(Descriptor, message.DESCRIPTOR))
    for field, value in message.ListFields():
        check = plan.get(field)
        if check is None:
            continue
        chars = check.limit.chars
        if check.kind is _Kind.TEXT and len(value) > chars:
            setattr(message, field.name, value[:chars])
        elif check.kind is _Kind.TEXTS and any(len(item) > chars for item in value):
            value[:] = [item[:chars] for item in value]
        elif check.kind is _Kind.MESSAGE:
            clip_to_limits(value)
        elif check.kind is _Kind.MESSAGES:
            for item in value:
                clip_to_limits(item)


def _check(message: Message, prefix: str) -> None:
    plan = _plan(cast(Descriptor, message.DESCRIPTOR))
    for field, value in message.ListFields():
        check = plan.get(field)
        if check is None:
            continue
        path = prefix + check.name
        kind = check.kind
        if kind is _Kind.TEXT:
            _check_text(value, path, check.limit)
        elif kind is _Kind.MESSAGE:
            _check(value, f"{path}.")
            _check_bytes(value, path, check.max_bytes)
        elif kind is _Kind.TEXTS:
            _check_count(value, path, check.limit)
            for item in value:
                _check_text(item, path, check.limit)
        elif kind is _Kind.MESSAGES:
            _check_count(value, path, check.limit)
            for item in value:
                _check(item, f"{path}.")
        else:
            _check_map(value, path, check)


def _check_map(value: Mapping[object, object], path: str, check: _FieldCheck) -> None:
    _check_count(value, path, check.limit)
    for key, item in value.items():
        if isinstance(key, str):
            _check_text(key, f"{path} key", check.limit)
        if check.map_value_kind is _Kind.TEXT and isinstance(item, str):
            _check_text(item, f"{path}[{key!r}]", check.limit)
        elif isinstance(item, Message):
            _check(item, f"{path}[{key!r}].")


def _check_text(value: str, path: str, limit: TextLimit) -> None:
    if len(value) > limit.chars:
        raise errors.InvalidArgument(f"{path} must be at most {limit.chars} characters (it has {len(value)})")


def _check_count(values: Sized, path: str, limit: TextLimit) -> None:
    count = len(values)
    if count > limit.items:
        raise errors.InvalidArgument(f"{path} may hold at most {limit.items} values (it has {count})")


def _check_bytes(value: Message, path: str, max_bytes: int | None) -> None:
    if max_bytes is not None and value.ByteSize() > max_bytes:
        raise errors.InvalidArgument(f"{path} must be at most {max_bytes} bytes serialised")
