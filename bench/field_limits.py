"""What the field-limit check (services/common/field_limits.py) costs per request: `python -m bench.field_limits`.

It runs on every call of every service, so its cost is measured on a typical CreateJob, the largest one
the limits allow, and an upload chunk (bytes only: nothing to check but the walk). Best of 5 rounds.
"""

from __future__ import annotations

import timeit
from functools import partial

from aiorch.jobs.v1 import files_pb2, jobs_pb2, types_pb2
from google.protobuf.message import Message

from services.common.field_limits import check_field_limits

ROUNDS = 5
CALLS = 50_000
PROJECT_ID = "0b7f6c1e-8a55-4b9e-9d8e-3f1f2a6c7d10"


def requests() -> dict[str, Message]:
    """The requests measured, by name."""
    typical = jobs_pb2.CreateJobRequest(
        project_id=PROJECT_ID,
        name="chapter one",
        description="narration of chapter one",
        type=types_pb2.TTS,
        params=types_pb2.JobParams(
            tts=types_pb2.TtsParams(
                text="The quick brown fox jumps over the lazy dog. " * 22, language="en", voice="joe", format="wav"
            )
        ),
        client_request_id="c1b5e8e4-2a51-4f0e-9a43-9b8b7c6d5e4f",
    )
    largest = jobs_pb2.CreateJobRequest(
        project_id=PROJECT_ID,
        name="n" * 200,
        description="d" * 10_000,
        type=types_pb2.TTS,
        params=types_pb2.JobParams(
            tts=types_pb2.TtsParams(text="t" * 100_000, language="en", voice="v" * 100, format="wav")
        ),
        client_request_id="c" * 200,
    )
    chunk = files_pb2.UploadFileRequest(chunk=b"\0" * 65536)
    return {"typical CreateJob (1 KB text)": typical, "largest CreateJob": largest, "upload chunk (64 KiB)": chunk}


def main() -> None:
    for name, request in requests().items():
        best = min(timeit.repeat(partial(check_field_limits, request), number=CALLS, repeat=ROUNDS)) / CALLS
        print(f"{name}: {best * 1e6:.2f} us per check (best of {ROUNDS} x {CALLS})")


if __name__ == "__main__":
    main()
