"""Request text with a NUL character is found wherever it hides, and refused as INVALID_ARGUMENT."""

from __future__ import annotations

import pytest
from aiorch.jobs.v1 import jobs_pb2, results_pb2, types_pb2
from google.protobuf import struct_pb2
from google.protobuf.message import Message

from services.common import errors
from services.common.request_text import check_request_text, nul_field


def test_clean_requests_pass() -> None:
    request = jobs_pb2.CreateJobRequest(name="ok", params=types_pb2.JobParams(stt=types_pb2.SttParams(formats=["srt"])))
    assert nul_field(request) is None
    check_request_text(request)


@pytest.mark.parametrize(
    ("request_message", "field"),
    [
        (jobs_pb2.CreateJobRequest(name="a\x00b"), "name"),
        (
            jobs_pb2.CreateJobRequest(params=types_pb2.JobParams(tts=types_pb2.TtsParams(text="\x00"))),
            "params.tts.text",
        ),
        (
            jobs_pb2.CreateJobRequest(params=types_pb2.JobParams(stt=types_pb2.SttParams(formats=["srt", "\x00"]))),
            "params.stt.formats",
        ),
        (
            results_pb2.CreateJobResultRequest(
                meta=struct_pb2.Struct(fields={"k\x00": struct_pb2.Value(number_value=1)})
            ),
            "meta.fields",
        ),
        (
            results_pb2.CreateJobResultRequest(
                meta=struct_pb2.Struct(fields={"k": struct_pb2.Value(string_value="\x00")})
            ),
            "meta.fields.string_value",
        ),
    ],
)
def test_a_nul_anywhere_is_found_by_its_field(request_message: Message, field: str) -> None:
    assert nul_field(request_message) == field
    with pytest.raises(errors.InvalidArgument, match=f"^{field} must not contain NUL"):
        check_request_text(request_message)
