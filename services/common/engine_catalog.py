"""What the engines offer, as data that every process may read (no engine code, no model files): the speech
recognition models, the neural voices with their languages, and the model names of the OpenAI-compatible API.

The workers' engines load what is named here (services/workers/engines/toolkit/neural_voices.py); the jobs
service lists it (GET /v1/models, the voices listing) without importing an engine.
"""

from __future__ import annotations

from dataclasses import dataclass

PIPER, KOKORO, ESPEAK = "piper", "kokoro", "espeak-ng"

# The languages Kokoro speaks here (espeak-ng voice names for the phonemes), each measured by a round trip
# through Whisper base (docs/engines.md); others stay with espeak-ng.
KOKORO_LANGUAGES = ("es", "fr", "de", "ca")


@dataclass(frozen=True)
class Voice:
    """A neural voice a TTS job may name."""

    name: str
    engine: str
    languages: tuple[str, ...]  # BCP-47 primary subtags it reads well
    sex: str


VOICES: dict[str, Voice] = {
    voice.name: voice
    for voice in (
        Voice("joe", PIPER, ("en",), "male"),
        # Kokoro-82M's presets ship only as Japanese voices; driven by other languages' phonemes they speak
        # them with an accent.
        Voice("kumo", KOKORO, KOKORO_LANGUAGES, "male"),
        Voice("alpha", KOKORO, KOKORO_LANGUAGES, "female"),
        Voice("gongitsune", KOKORO, KOKORO_LANGUAGES, "female"),
        Voice("nezumi", KOKORO, KOKORO_LANGUAGES, "female"),
        Voice("tebukuro", KOKORO, KOKORO_LANGUAGES, "female"),
    )
}
# Each the preset with the lowest round-trip word error rate in its language (docs/engines.md).
DEFAULT_VOICES: dict[str, str] = {"en": "joe", "es": "gongitsune", "fr": "nezumi", "de": "kumo", "ca": "gongitsune"}

# Speaking rates a TTS job may ask for, in words per minute (TtsParams.rate; 0 means the default).
MIN_RATE, DEFAULT_RATE, MAX_RATE = 80, 175, 450

# Audio a TTS or voice-cloning job may write (TtsParams.format), with its media type. opus is Ogg Opus, aac is
# ADTS, pcm is raw 16-bit little-endian mono at 24 kHz (what OpenAI's API gives for these names).
AUDIO_FORMATS: dict[str, str] = {
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "ogg": "audio/ogg",
    "opus": "audio/ogg",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "pcm": "audio/pcm",
}
PCM_SAMPLE_RATE = 24000

# Speech recognition models a STT job may name (SttParams.model), with what they hear.
STT_MODELS: dict[str, str] = {
    "base": "Whisper base: 99 languages, language detection, translation into English",
    "tiny.en": "Whisper tiny.en: English only, the fastest",
}


@dataclass(frozen=True)
class ApiModel:
    """A model id of the OpenAI-compatible API and the job it becomes."""

    id: str
    job_type: str  # STT or TTS
    engine: str  # STT: a key of STT_MODELS; TTS: "" (the language's neural voice) or "espeak" (formant)
    description: str


API_MODELS: dict[str, ApiModel] = {
    model.id: model
    for model in (
        ApiModel("whisper-1", "STT", "base", "OpenAI's name for speech recognition: Whisper base"),
        ApiModel("whisper-base", "STT", "base", STT_MODELS["base"]),
        ApiModel("whisper-tiny.en", "STT", "tiny.en", STT_MODELS["tiny.en"]),
        ApiModel("tts-1", "TTS", "", "The language's neural voice (Piper for English, Kokoro-82M for es, fr, de, ca)"),
        ApiModel("tts-1-hd", "TTS", "", "The same neural voices as tts-1"),
        ApiModel("gpt-4o-mini-tts", "TTS", "", "The same neural voices as tts-1"),
        ApiModel("espeak-ng", "TTS", "espeak", "espeak-ng formant synthesis: every language it knows, fastest"),
    )
}


@dataclass(frozen=True)
class EngineOffer:
    """What one worker's engine for one job type can do, as the worker reports it (services/workers/offers.py)."""

    job_type: str
    engine: str  # module:Class of the engine
    models: tuple[str, ...] = ()  # STT: the Whisper models installed
    languages: tuple[str, ...] = ()  # languages it hears (STT) or speaks (the others)
    voices: tuple[str, ...] = ()  # neural voices it speaks with
    pairs: tuple[tuple[str, str, str], ...] = ()  # DUBBING: (source, target, via: "" direct or a pivot language)

    def to_dict(self) -> dict[str, object]:
        """The JSON form the bucket holds."""
        return {
            "job_type": self.job_type,
            "engine": self.engine,
            "models": list(self.models),
            "languages": list(self.languages),
            "voices": list(self.voices),
            "pairs": [list(p) for p in self.pairs],
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> EngineOffer:
        """An offer from its JSON form; ValueError (or KeyError, TypeError) for a malformed one."""

        def names(key: str) -> tuple[str, ...]:
            value = data.get(key, [])
            if not isinstance(value, list):
                raise TypeError(f"{key} is not a list")
            return tuple(str(v) for v in value)

        raw_pairs = data.get("pairs", [])
        if not isinstance(raw_pairs, list):
            raise TypeError("pairs is not a list")
        pairs = tuple((str(p[0]), str(p[1]), str(p[2])) for p in raw_pairs)
        return cls(
            str(data["job_type"]), str(data["engine"]), names("models"), names("languages"), names("voices"), pairs
        )
