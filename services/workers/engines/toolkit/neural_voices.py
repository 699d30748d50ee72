"""The neural voices that ship, by the name a job gives: which engine speaks each, the languages it reads
well (measured by round trips through Whisper base, docs/engines.md) and its sex, and the voice each of those
languages gets when a job names none. Every other language is espeak-ng's."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from services.workers.engines.toolkit import kokoro, piper
from services.workers.engines.toolkit.espeak import Espeak

PIPER, KOKORO = "piper", "kokoro"


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


VOICES: dict[str, NeuralVoice] = {
    **{name: NeuralVoice(name, PIPER, (files.language,), files.sex) for name, files in piper.VOICES.items()},
    **{name: NeuralVoice(name, KOKORO, kokoro.LANGUAGES, preset.sex) for name, preset in kokoro.VOICES.items()},
}
# Each the preset with the lowest round-trip word error rate in its language (docs/engines.md).
DEFAULTS: dict[str, str] = {"en": "joe", "es": "gongitsune", "fr": "nezumi", "de": "kumo", "ca": "gongitsune"}
