"""What kind of media an input file holds, sniffed from its bytes, and whether it fits a job type."""

from __future__ import annotations

import filetype

from services.common.errors import InvalidArgument
from services.common.job_types import InputKind, JobTypeSpec

OCTET_STREAM = "application/octet-stream"

_KIND_WORDS = {InputKind.AUDIO: "audio", InputKind.VIDEO: "video", InputKind.IMAGE: "an image"}


def sniff(head: bytes) -> str:
    """The media type of content starting with `head`, by its magic numbers (not by its name)."""
    kind = filetype.guess(head)
    return str(kind.mime) if kind is not None else OCTET_STREAM


def media_kind(content_type: str) -> InputKind | None:
    """The input kind of a media type; None for anything else."""
    major = content_type.split("/", 1)[0]
    try:
        return InputKind(major)
    except ValueError:
        return None


def check_input_kind(spec: JobTypeSpec, content_type: str, filename: str) -> None:
    """INVALID_ARGUMENT unless the file's sniffed kind fits the job type."""
    if media_kind(content_type) not in spec.input_kinds:
        wanted = " or ".join(_KIND_WORDS[k] for k in sorted(spec.input_kinds))
        raise InvalidArgument(f"{spec.name} needs {wanted} as input; {filename!r} is {content_type} by its content")
