"""Each job type's parameters as frozen, typed dataclasses: what the domain and the engines work on.

They mirror the `*Params` messages of protos/aiorch/jobs/v1/types.proto field for field, with proto3's
zero values ("" and 0 mean "not given": the engine's default applies), so converting is lossless both ways.
services/common/job_params_proto.py is the one place that converts; nothing here imports generated code.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SttParams:
    """Speech to text; the input is audio or video."""

    language: str = ""  # BCP-47 language of the speech ("" : detected)
    formats: tuple[str, ...] = ()  # transcript formats besides JSON: txt, srt, vtt (() : all)
    model: str = ""  # Whisper model: base (99 languages) or tiny.en (English, fastest) ("" : base)
    task: str = ""  # transcribe, or translate (into English) ("" : transcribe)
    prompt: str = ""  # text the speech continues or whose spellings it uses
    temperature: float = 0.0  # 0-1 (0: Whisper's default, with fallback to higher temperatures)


@dataclass(frozen=True)
class TtsParams:
    """Text to speech; no input."""

    text: str = ""
    language: str = ""
    voice: str = ""  # engine voice variant, e.g. m3, f3
    rate: int = 0  # words per minute (0: the engine's default)
    pitch: int = 0  # 0-100 (0: the engine's default)
    format: str = ""  # wav, mp3 or ogg ("" : wav)


@dataclass(frozen=True)
class VoiceCloningParams:
    """Text spoken in the voice of the input reference recording."""

    text: str = ""
    language: str = ""
    format: str = ""  # wav, mp3 or ogg ("" : wav)


@dataclass(frozen=True)
class DubbingParams:
    """A video or audio input translated and re-voiced."""

    source_language: str = ""
    target_language: str = ""
    voice: str = ""
    original_volume: float = 0.0  # the original track under the new speech, 0.0-1.0


@dataclass(frozen=True)
class AiStoriesParams:
    """A talking-head video from the input portrait and a script."""

    script: str = ""
    language: str = ""
    voice: str = ""
    fps: int = 0  # frames per second (0: the engine's default)


JobParams = SttParams | TtsParams | VoiceCloningParams | DubbingParams | AiStoriesParams
"""The parameters of any job type."""
