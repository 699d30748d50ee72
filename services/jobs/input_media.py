"""What kind of media a file holds (sniffed from its bytes) and which kinds each job type takes."""

from __future__ import annotations

import filetype

from services.common.errors import InvalidArgument

OCTET_STREAM = "application/octet-stream"

# Job type -> the media kinds its input may be ("audio", "video", "image"); TTS takes no input.
INPUT_KINDS: dict[str, frozenset[str]] = {
    "STT": frozenset({"audio", "video"}),
    "TTS": frozenset(),
    "VOICE_CLONING": frozenset({"audio"}),
    "DUBBING": frozenset({"audio", "video"}),
    "AI_STORIES": frozenset({"image"}),
}

_KIND_WORDS = {"audio": "audio", "video": "video", "image": "an image"}


def sniff(head: bytes) -> str:
    """The media type of content starting with `head`, by its magic numbers (not by its name)."""
    kind = filetype.guess(head)
    return str(kind.mime) if kind is not None else OCTET_STREAM


def media_kind(content_type: str) -> str:
    """ "audio", "video", "image" or "other"."""
    major = content_type.split("/", 1)[0]
    return major if major in _KIND_WORDS else "other"


def needs_input(job_type: str) -> bool:
    """True for the types that work on an input file."""
    return bool(INPUT_KINDS[job_type])


def check_input_kind(job_type: str, content_type: str, filename: str) -> None:
    """INVALID_ARGUMENT unless the file's sniffed kind fits the job type."""
    allowed = INPUT_KINDS[job_type]
    if media_kind(content_type) not in allowed:
        wanted = " or ".join(_KIND_WORDS[k] for k in sorted(allowed))
        raise InvalidArgument(f"{job_type} needs {wanted} as input; {filename!r} is {content_type} by its content")
