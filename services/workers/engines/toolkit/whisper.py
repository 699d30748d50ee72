"""Speech recognition on faster-whisper, shared by the STT and dubbing engines.

The models are those of whisper_models.py: Whisper base (99 languages, the default) and tiny.en (English
only, fastest). AIORCH_WORKER_STT_MODEL_PATH names another CTranslate2 Whisper model directory, which then
serves the default instead of base. With no language given, Whisper detects it on the first window that
holds sound and keeps it for the rest of the file.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from services.workers.engines.base import BadInput, EngineContext, TransientError
from services.workers.engines.toolkit import ffmpeg, whisper_models
from services.workers.engines.toolkit.inference import model_threads
from services.workers.engines.toolkit.transcript import Decoded, Segment, Word

MODEL_PATH_ENV = "AIORCH_WORKER_STT_MODEL_PATH"
# "cuda" on a GPU worker (CTranslate2's wheels carry CUDA kernels); "cpu" everywhere else.
DEVICE_ENV = "AIORCH_WORKER_STT_DEVICE"
COMPUTE_TYPES = {"cpu": "int8", "cuda": "float16"}
SAMPLE_RATE = 16000  # what Whisper listens at
# Audio is decoded and recognised this much at a time: a job's memory does not grow with its input's length.
WINDOW_SECONDS = 60.0
# Where in a window's last seconds its cut is sought (the quietest tenth of a second there).
CUT_SEARCH_SECONDS = 5.0
# A window whose loudest sample stays under -60 dBFS holds no speech anyone could hear.
SILENT_PEAK = 10 ** (-60 / 20)

_LANGUAGE = re.compile(r"[a-z]{2,3}")
_models: dict[Path, Any] = {}
_models_lock = threading.Lock()


TASKS = ("transcribe", "translate")


@dataclass(frozen=True)
class Transcript:
    """What was heard in a file, how long its audio lasted in seconds, and its language.

    `language` is the one asked for, or the one Whisper detected (then `language_probability` is its
    confidence, 0 to 1; it is None when the language was given).
    """

    segments: list[Segment]
    duration_seconds: float
    language: str
    language_probability: float | None = None


def primary_language(code: str, default: str = "en") -> str:
    """The primary subtag of a BCP-47 code ("en-US" -> "en"); empty means `default` ("" : detect)."""
    primary = (code or default).strip().lower().replace("_", "-").split("-")[0]
    if not primary and not default:
        return ""
    if not _LANGUAGE.fullmatch(primary):
        raise BadInput(f"language {code!r} is not a language code such as en or es")
    return primary


def model_names() -> list[str]:
    """The model names a job may ask for."""
    return list(whisper_models.MODELS)


def model_label(name: str) -> str:
    """What a job's result calls the model that `load_model(..., name)` loads."""
    configured = os.environ.get(MODEL_PATH_ENV, "").strip()
    if configured and not name:
        return Path(configured).name
    return name or whisper_models.DEFAULT_MODEL


def _model_path(language: str, name: str, task: str) -> Path:
    """The directory of the model a job asks for, refused with the reason when it cannot serve the job."""
    configured = os.environ.get(MODEL_PATH_ENV, "").strip()
    if task not in TASKS:
        raise BadInput(f"task {task!r} is not one of {', '.join(TASKS)}")
    if name and name not in whisper_models.MODELS:
        raise BadInput(f"speech model {name!r} is not one of {', '.join(model_names())}")
    if configured and not name:
        path = Path(configured)
        if not (path / "model.bin").is_file():
            raise BadInput(f"{MODEL_PATH_ENV}={configured} is not a CTranslate2 Whisper model directory")
        return path
    chosen = name or whisper_models.DEFAULT_MODEL
    if not whisper_models.MODELS[chosen].multilingual:
        if language not in ("", "en"):
            raise BadInput(f"speech model {chosen} knows English only, not {language}; use base")
        if task == "translate":
            raise BadInput(f"speech model {chosen} knows English only and cannot translate; use base")
    try:
        return whisper_models.model_dir(chosen)
    except whisper_models.ModelUnavailable as exc:
        raise TransientError(str(exc)) from exc


def load_model(language: str, name: str = "", task: str = "transcribe") -> Any:
    """The Whisper model `name` ("" : the configured directory, else base) for `language` ("" : detect) and
    `task`, loaded once per process and shared by every job."""
    path = _model_path(language, name, task)
    with _models_lock:
        model = _models.get(path)
        if model is None:
            # Models are local paths; never let huggingface_hub reach for the network.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from faster_whisper import WhisperModel  # noqa: PLC0415

            device = os.environ.get(DEVICE_ENV, "cpu").strip().lower() or "cpu"
            if device not in COMPUTE_TYPES:
                raise BadInput(f"{DEVICE_ENV}={device} is not one of {', '.join(COMPUTE_TYPES)}")
            threads = model_threads()
            model = WhisperModel(str(path), device=device, compute_type=COMPUTE_TYPES[device], cpu_threads=threads)
            _models[path] = model
    if language and language not in model.supported_languages:
        raise BadInput(f"the speech model does not know language {language}")
    if task == "translate" and not model.model.is_multilingual:
        raise BadInput("the speech model knows one language only and cannot translate")
    return model


def transcribe_file(
    model: Any,
    path: Path,
    language: str,
    ctx: EngineContext,
    on_progress: Callable[[float], None],
    task: str = "transcribe",
    prompt: str = "",
    temperature: float = 0.0,
) -> Transcript:
    """The speech of a media file heard by a `load_model` model; `on_progress` gets the fraction heard so far.

    `language` "" lets Whisper detect it on the first window with sound; `task` "translate" writes English.
    `prompt` is the text before the first window; `temperature` above 0 samples at that one temperature.

    The audio is decoded and recognised one window at a time, so memory stays at about two windows whatever
    the length of the input; voice-activity detection skips the silence in each window before Whisper
    computes anything, so hours of silence cost little. Whisper decodes lazily while the segments are
    iterated, so a cancel between segments (or windows) stops the work.
    """
    expected, has_audio, _ = ffmpeg.media_info(path)
    if not has_audio:
        raise BadInput(f"{path.name} has no audio stream to listen to")
    blocks = ffmpeg.stream_audio(path, SAMPLE_RATE, WINDOW_SECONDS)
    segments: list[Segment] = []
    heard = 0.0
    detected: tuple[str, float] | None = None
    try:
        for offset, window in speech_windows(blocks):
            ctx.check_cancelled()
            heard = offset + window.size / SAMPLE_RATE
            if float(np.max(np.abs(window))) < SILENT_PEAK:
                on_progress(_fraction(heard, expected))
                continue  # nothing to hear: not even the voice-activity model runs
            decoding = Decoding(task, prompt if not segments else "", temperature)
            pieces, info = _recognise(model, window, offset, language or (detected[0] if detected else ""), decoding)
            if not language and detected is None:
                # One language per file: the first window that holds sound decides it for the rest.
                detected = (str(info.language), round(float(info.language_probability), 3))
            for segment in pieces:
                ctx.check_cancelled()
                segments.append(segment)
                on_progress(_fraction(segment.end, expected))
            on_progress(_fraction(heard, expected))
    finally:
        blocks.close()
    if language:
        return Transcript(segments, round(heard, 3), language)
    if detected is None:  # silence only: nothing to detect from
        return Transcript(segments, round(heard, 3), "", None)
    return Transcript(segments, round(heard, 3), detected[0], detected[1])


def speech_windows(blocks: Iterable[NDArray[np.float32]]) -> Iterator[tuple[float, NDArray[np.float32]]]:
    """(start in seconds, samples) windows of at most WINDOW_SECONDS of 16 kHz audio, cut where it is quietest.

    Each window ends at the quietest tenth of a second of its last CUT_SEARCH_SECONDS, so that a cut rarely
    falls inside a word; the rest starts the next window.
    """
    window_samples = round(WINDOW_SECONDS * SAMPLE_RATE)
    pending = np.zeros(0, dtype=np.float32)
    start = 0
    for block in blocks:
        pending = np.concatenate([pending, block])
        while pending.size >= window_samples:
            cut = _quietest_cut(pending[:window_samples])
            yield start / SAMPLE_RATE, pending[:cut].copy()
            start += cut
            pending = pending[cut:].copy()
    if pending.size:
        yield start / SAMPLE_RATE, pending


def _quietest_cut(window: NDArray[np.float32]) -> int:
    frame = SAMPLE_RATE // 10
    search = min(window.size, round(CUT_SEARCH_SECONDS * SAMPLE_RATE)) // frame * frame
    if search < frame:
        return int(window.size)
    tail = window[window.size - search :]
    energy = np.square(tail.reshape(-1, frame)).mean(axis=1)
    return int(window.size - search + int(np.argmin(energy)) * frame + frame // 2)


@dataclass(frozen=True)
class Decoding:
    """How Whisper decodes one window."""

    task: str
    prompt: str
    temperature: float


# faster-whisper's own default: greedy first, hotter only when a decode fails its checks.
DEFAULT_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def _recognise(
    model: Any, window: NDArray[np.float32], offset: float, language: str, decoding: Decoding
) -> tuple[Iterator[Segment], Any]:
    """The window's segments (decoded lazily, as they are iterated) and Whisper's TranscriptionInfo."""
    pieces, info = model.transcribe(
        window,
        language=language or None,
        task=decoding.task,
        word_timestamps=True,
        vad_filter=True,
        initial_prompt=decoding.prompt or None,
        temperature=decoding.temperature if decoding.temperature > 0 else DEFAULT_TEMPERATURES,
    )
    return _segments(pieces, offset, window.size / SAMPLE_RATE), info


def _segments(pieces: Iterable[Any], offset: float, end: float) -> Iterator[Segment]:
    for piece in pieces:
        text = str(piece.text).strip()
        if not text:
            continue
        words = tuple(
            Word(_shift(w.start, offset, end), _shift(w.end, offset, end), str(w.word)) for w in piece.words or ()
        )
        decoded = Decoded(
            seek=round(offset * 100) + int(piece.seek),
            tokens=tuple(int(t) for t in piece.tokens),
            temperature=float(piece.temperature or 0.0),
            avg_logprob=round(float(piece.avg_logprob), 4),
            compression_ratio=round(float(piece.compression_ratio), 4),
            no_speech_prob=round(float(piece.no_speech_prob), 4),
        )
        yield Segment(_shift(piece.start, offset, end), _shift(piece.end, offset, end), text, words, decoded)


def _shift(seconds: float, offset: float, window_end: float) -> float:
    # Whisper's times are within the window (and may run a little past its end); the transcript's are absolute.
    return round(offset + min(max(float(seconds), 0.0), window_end), 3)


def _fraction(seconds: float, expected: float) -> float:
    return min(1.0, seconds / expected) if expected > 0 else 1.0
