"""The neural voices that ship, by the name a job gives (services/common/engine_catalog.py says which engine
speaks each, the languages it reads well and the voice each language gets when a job names none), ready to
speak. Every other language is espeak-ng's."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from services.common import engine_catalog
from services.common.engine_catalog import PIPER
from services.workers.engines.toolkit import kokoro, piper
from services.workers.engines.toolkit.espeak import Espeak


@dataclass(frozen=True)
class NeuralVoice:
    name: str
    engine: str
    languages: tuple[str, ...]  # BCP-47 primary subtags
    sex: str

    @property
    def sample_rate(self) -> int:
        return piper.PiperVoice.shared(self.name).sample_rate if self.engine == PIPER else kokoro.SAMPLE_RATE

    def speak(self, text: str, language: str, espeak: Espeak, rate: int) -> NDArray[np.int16]:
        """One sentence of `language` (one of `languages`) as 16-bit samples at `sample_rate`."""
        if self.engine == PIPER:
            return piper.PiperVoice.shared(self.name).synthesize(text, espeak, rate)
        return kokoro.KokoroModel.shared().synthesize(text, self.name, language, espeak, rate)


# The catalog names them (services/common/engine_catalog.py); piper.VOICES and kokoro.VOICES load them.
VOICES: dict[str, NeuralVoice] = {
    v.name: NeuralVoice(v.name, v.engine, v.languages, v.sex) for v in engine_catalog.VOICES.values()
}
DEFAULTS: dict[str, str] = engine_catalog.DEFAULT_VOICES
