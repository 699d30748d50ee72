"""The one converter between `types_pb2.JobParams` and the typed parameter dataclasses of job_params.py.

The jobs service converts a request's parameters here once, at its edge; the workers convert a dispatch
message's parameters here once, in services/workers/assignment.py. The job type of a `JobParams` message is
the oneof member it sets (services/common/job_types.py knows which member belongs to which type).
"""

from __future__ import annotations

from aiorch.jobs.v1 import types_pb2

from services.common import job_types
from services.common.job_params import (
    AiStoriesParams,
    DubbingParams,
    JobParams,
    SttParams,
    TtsParams,
    VoiceCloningParams,
)
from services.common.job_types import JobTypeSpec


def from_proto(message: types_pb2.JobParams) -> JobParams | None:
    """The parameters the message carries; None when it sets no member of its oneof."""
    field = message.WhichOneof("params")
    return None if field is None else _from_member(field, message)


def _from_member(field: str, message: types_pb2.JobParams) -> JobParams:
    # An unset member reads as its defaults, which params_for relies on.
    match field:
        case "stt":
            return SttParams(
                language=message.stt.language,
                formats=tuple(message.stt.formats),
                model=message.stt.model,
                task=message.stt.task,
                prompt=message.stt.prompt,
                temperature=message.stt.temperature,
            )
        case "tts":
            tts = message.tts
            return TtsParams(
                text=tts.text, language=tts.language, voice=tts.voice, rate=tts.rate, pitch=tts.pitch, format=tts.format
            )
        case "voice_cloning":
            cloning = message.voice_cloning
            return VoiceCloningParams(text=cloning.text, language=cloning.language, format=cloning.format)
        case "dubbing":
            dubbing = message.dubbing
            return DubbingParams(
                source_language=dubbing.source_language,
                target_language=dubbing.target_language,
                voice=dubbing.voice,
                original_volume=dubbing.original_volume,
            )
        case "ai_stories":
            story = message.ai_stories
            return AiStoriesParams(script=story.script, language=story.language, voice=story.voice, fps=story.fps)
        case _:
            raise job_types.UnknownJobType(f"JobParams member {field!r} has no dataclass in job_params.py")


def to_proto(params: JobParams) -> types_pb2.JobParams:
    """The JobParams message carrying `params`."""
    match params:
        case SttParams():
            return types_pb2.JobParams(
                stt=types_pb2.SttParams(
                    language=params.language,
                    formats=params.formats,
                    model=params.model,
                    task=params.task,
                    prompt=params.prompt,
                    temperature=params.temperature,
                )
            )
        case TtsParams():
            return types_pb2.JobParams(
                tts=types_pb2.TtsParams(
                    text=params.text,
                    language=params.language,
                    voice=params.voice,
                    rate=params.rate,
                    pitch=params.pitch,
                    format=params.format,
                )
            )
        case VoiceCloningParams():
            return types_pb2.JobParams(
                voice_cloning=types_pb2.VoiceCloningParams(
                    text=params.text, language=params.language, format=params.format
                )
            )
        case DubbingParams():
            return types_pb2.JobParams(
                dubbing=types_pb2.DubbingParams(
                    source_language=params.source_language,
                    target_language=params.target_language,
                    voice=params.voice,
                    original_volume=params.original_volume,
                )
            )
        case AiStoriesParams():
            return types_pb2.JobParams(
                ai_stories=types_pb2.AiStoriesParams(
                    script=params.script, language=params.language, voice=params.voice, fps=params.fps
                )
            )


_MEMBER_OF: dict[type[JobParams], str] = {
    SttParams: "stt",
    TtsParams: "tts",
    VoiceCloningParams: "voice_cloning",
    DubbingParams: "dubbing",
    AiStoriesParams: "ai_stories",
}


def encode_params(params: JobParams) -> bytes:
    """The stored encoding of parameters: the JobParams message's bytes, as a dispatch carries them."""
    return to_proto(params).SerializeToString()


def job_type_for(params: JobParams) -> JobTypeSpec:
    """The job type that takes parameters like `params`."""
    return job_types.by_params_field(_MEMBER_OF[type(params)])


def job_type_of(message: types_pb2.JobParams) -> JobTypeSpec | None:
    """The job type whose parameters the message carries; None when it carries none."""
    field = message.WhichOneof("params")
    return None if field is None else job_types.by_params_field(field)


def params_for(spec: JobTypeSpec, message: types_pb2.JobParams) -> JobParams:
    """The parameters of a `spec` job from the message: its own member, or that member's defaults if unset.

    ValueError when the message carries another type's parameters.
    """
    given = job_type_of(message)
    if given is not None and given != spec:
        raise ValueError(f"parameters for {given.name} given to a {spec.name} job")
    return _from_member(spec.params_field, message)
