"""The job types, written once: per type its parameters field, input kinds, limits and default engine.

The list of types is the `JobType` enum of protos/aiorch/jobs/v1/types.proto; this module adds what the enum
cannot say. Everything that needs a type's facts reads them here: the jobs service (parameters, inputs, text
limits), the workers (engines, input durations), the NATS topology (queues, permissions) and the CLI. A new job
type is a new enum value, a `JobParams` member named after it, a `_FACTS` entry and an engine; importing this
module fails while one of them is missing.

Limits here are the defaults; operators change the input ones with settings (services/common/config.py):
`AIORCH_WORKER_INPUT_MAX_SECONDS_BY_TYPE` for durations, `AIORCH_WORKER_INPUT_MAX_PIXELS` for images.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from aiorch.jobs.v1 import types_pb2


class InputKind(StrEnum):
    """What a job's input file holds, sniffed from its content."""

    AUDIO = "audio"
    VIDEO = "video"
    IMAGE = "image"


@dataclass(frozen=True)
class JobTypeSpec:
    """One job type's facts."""

    name: str  # the JobType enum name, also the REST/JSON name and the NATS subject token (lower-cased)
    number: types_pb2.JobType.ValueType  # the JobType enum value
    params_field: str  # the member of the JobParams oneof that carries this type's parameters
    input_kinds: frozenset[InputKind]  # what the input may be; empty: the type takes no input
    text_field: str | None  # the parameter holding the text to speak, if any
    max_text_chars: int | None  # longest text in `text_field`, checked by the jobs service and the engine
    max_input_seconds: float | None  # longest audio or video input by default; None: no timed input
    engine: str  # "module:Class" of the CPU engine (AIORCH_WORKER_ENGINES may name another)

    @property
    def takes_input(self) -> bool:
        """Whether a job of this type needs an input file."""
        return bool(self.input_kinds)


@dataclass(frozen=True)
class _Facts:
    input_kinds: frozenset[InputKind]
    text_field: str | None
    max_text_chars: int | None
    max_input_seconds: float | None
    engine: str


_AUDIO_OR_VIDEO = frozenset({InputKind.AUDIO, InputKind.VIDEO})
_HOUR = 3600.0

# Keyed by the enum's values, so a renamed type fails here rather than silently losing its facts.
_FACTS: dict[int, _Facts] = {
    types_pb2.STT: _Facts(
        input_kinds=_AUDIO_OR_VIDEO,
        text_field=None,
        max_text_chars=None,
        max_input_seconds=4 * _HOUR,
        engine="services.workers.engines.stt:WhisperStt",
    ),
    types_pb2.TTS: _Facts(
        input_kinds=frozenset(),
        text_field="text",
        max_text_chars=100_000,
        max_input_seconds=None,
        engine="services.workers.engines.tts:TextToSpeech",
    ),
    types_pb2.VOICE_CLONING: _Facts(
        input_kinds=frozenset({InputKind.AUDIO}),
        text_field="text",
        # WORLD runs at roughly a third of real time on one core: bound the work one job can ask for.
        max_text_chars=5_000,
        # The reference recording; the engine analyses only its first 30 s.
        max_input_seconds=600.0,
        engine="services.workers.engines.voice_cloning:WorldVoiceCloning",
    ),
    types_pb2.DUBBING: _Facts(
        input_kinds=_AUDIO_OR_VIDEO,
        text_field=None,
        max_text_chars=None,
        max_input_seconds=1 * _HOUR,
        engine="services.workers.engines.dubbing:ApertiumDubbing",
    ),
    types_pb2.AI_STORIES: _Facts(
        input_kinds=frozenset({InputKind.IMAGE}),
        text_field="script",
        max_text_chars=10_000,  # about ten minutes of speech
        max_input_seconds=None,
        engine="services.workers.engines.stories:TalkingHead",
    ),
}


def _build() -> tuple[JobTypeSpec, ...]:
    oneof = types_pb2.JobParams.DESCRIPTOR.oneofs_by_name["params"]
    members = {field.name: field for field in oneof.fields}
    specs: list[JobTypeSpec] = []
    for value in types_pb2.JobType.DESCRIPTOR.values:
        if value.number == types_pb2.JOB_TYPE_UNSPECIFIED:
            continue
        facts = _FACTS.get(value.number)
        if facts is None:
            raise RuntimeError(f"job type {value.name} has no entry in services/common/job_types.py")
        params_field = value.name.lower()
        member = members.get(params_field)
        if member is None:
            raise RuntimeError(f"job type {value.name} has no JobParams member {params_field!r}")
        message = member.message_type
        if facts.text_field is not None and (message is None or facts.text_field not in message.fields_by_name):
            raise RuntimeError(f"JobParams.{params_field} has no text field {facts.text_field!r}")
        specs.append(
            JobTypeSpec(
                name=value.name,
                number=types_pb2.JobType.ValueType(value.number),
                params_field=params_field,
                input_kinds=facts.input_kinds,
                text_field=facts.text_field,
                max_text_chars=facts.max_text_chars,
                max_input_seconds=facts.max_input_seconds,
                engine=facts.engine,
            )
        )
    extra = set(_FACTS) - {spec.number for spec in specs}
    if extra:
        raise RuntimeError(f"services/common/job_types.py has facts for unknown JobType values {sorted(extra)}")
    return tuple(specs)


JOB_TYPES: tuple[JobTypeSpec, ...] = _build()
"""Every job type, in enum order."""

NAMES: tuple[str, ...] = tuple(spec.name for spec in JOB_TYPES)
"""Every job type's name, in enum order."""

_BY_NAME = {spec.name: spec for spec in JOB_TYPES}
_BY_NUMBER: dict[int, JobTypeSpec] = {spec.number: spec for spec in JOB_TYPES}
_BY_PARAMS_FIELD = {spec.params_field: spec for spec in JOB_TYPES}

# Named specs for code that means one type (an engine's `job_type`, a CLI submit command).
STT = _BY_NUMBER[types_pb2.STT]
TTS = _BY_NUMBER[types_pb2.TTS]
VOICE_CLONING = _BY_NUMBER[types_pb2.VOICE_CLONING]
DUBBING = _BY_NUMBER[types_pb2.DUBBING]
AI_STORIES = _BY_NUMBER[types_pb2.AI_STORIES]


class UnknownJobType(ValueError):
    """A name, number or parameters field that is no job type."""


def get(name: str) -> JobTypeSpec:
    """The type called `name` (any case, surrounding blanks ignored); UnknownJobType lists the valid ones."""
    spec = _BY_NAME.get(name.strip().upper())
    if spec is None:
        raise UnknownJobType(f"unknown job type {name.strip()!r}; choose from {', '.join(NAMES)}")
    return spec


def by_number(number: int) -> JobTypeSpec:
    """The type with enum value `number`; UnknownJobType for 0 (unspecified) or an unknown value."""
    spec = _BY_NUMBER.get(number)
    if spec is None:
        raise UnknownJobType(f"unknown job type number {number}")
    return spec


def by_params_field(field: str) -> JobTypeSpec:
    """The type whose parameters travel in the JobParams member `field` (e.g. "voice_cloning")."""
    spec = _BY_PARAMS_FIELD.get(field)
    if spec is None:
        raise UnknownJobType(f"no job type takes the parameters {field!r}")
    return spec


def parse_names(text: str) -> list[str]:
    """Job type names from a comma-separated list (any case, duplicates dropped); ValueError if none or unknown."""
    names: list[str] = []
    for raw in text.split(","):
        if not raw.strip():
            continue
        name = get(raw).name
        if name not in names:
            names.append(name)
    if not names:
        raise UnknownJobType(f"no job types given; choose from {', '.join(NAMES)}")
    return names
