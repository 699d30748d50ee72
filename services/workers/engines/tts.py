"""Text to speech with espeak-ng: offline, many languages, 16-bit mono WAV."""

from __future__ import annotations

import re
import wave
from pathlib import Path
from typing import cast

from aiorch.jobs.v1 import types_pb2
from google.protobuf.message import Message

from services.workers.engines._espeak import DEFAULT_PITCH, DEFAULT_RATE, Espeak
from services.workers.engines.base import BadInput, EngineContext, EngineResult

MAX_TEXT_CHARS = 100_000
MAX_CHUNK_CHARS = 400
MIN_RATE, MAX_RATE = 80, 450
SUPPORTED_FORMATS = ("wav",)
EXAMPLE_LANGUAGES = "en, es, fr, de, it, pt"
OUTPUT_NAME = "speech.wav"

_LANGUAGE = re.compile(r"[a-z]{2,3}(-[a-z0-9]{2,8})*")
_VARIANT = re.compile(r"[a-z0-9_-]{1,32}")
# Latin and CJK sentence ends (the CJK ones written as escapes).
_SENTENCE_END = re.compile("(?<=[.!?;\u3002\uff01\uff1f])\\s+")
_CLAUSE_END = re.compile(r"(?<=[,:])\s+")


def split_text(text: str, limit: int = MAX_CHUNK_CHARS) -> list[str]:
    """Sentences, with any longer than `limit` cut at commas and then at spaces."""
    chunks: list[str] = []
    for sentence in _SENTENCE_END.split(text.strip()):
        pieces = [sentence] if len(sentence) <= limit else _CLAUSE_END.split(sentence)
        for piece in pieces:
            rest = piece
            while len(rest) > limit:
                cut = rest.rfind(" ", 0, limit)
                cut = cut if cut > 0 else limit
                chunks.append(rest[:cut])
                rest = rest[cut:].lstrip()
            if rest.strip():
                chunks.append(rest.strip())
    return chunks


def voice_name(language: str, voice: str) -> str:
    """The espeak-ng voice for a language and an optional variant (e.g. "en" + "f3" -> "en+f3")."""
    language = (language or "en").strip().lower()
    if not _LANGUAGE.fullmatch(language):
        raise BadInput(f"language {language!r} is not a language code; try one of {EXAMPLE_LANGUAGES}")
    voice = voice.strip().lower()
    if not voice:
        return language
    if not _VARIANT.fullmatch(voice):
        raise BadInput(f"voice {voice!r} is not a voice name (e.g. m1, f3, klatt)")
    return f"{language}+{voice}"


class EspeakTts:
    """TTS engine on espeak-ng; the text is spoken sentence by sentence so progress and cancel are real."""

    job_type = "TTS"

    def __init__(self, espeak: Espeak | None = None) -> None:
        self._espeak = espeak

    def run(self, params: Message, inputs: list[Path], ctx: EngineContext) -> EngineResult:
        """Speak `params.text` into speech.wav."""
        tts = cast(types_pb2.TtsParams, params)
        fmt = (tts.format or "wav").lower()
        if fmt not in SUPPORTED_FORMATS:
            raise BadInput(f"format {fmt} is not supported yet; use wav")
        text = tts.text.strip()
        if not text:
            raise BadInput("text is empty: nothing to speak")
        if len(text) > MAX_TEXT_CHARS:
            raise BadInput(f"text is longer than {MAX_TEXT_CHARS} characters")
        rate = tts.rate or DEFAULT_RATE
        if not MIN_RATE <= rate <= MAX_RATE:
            raise BadInput(f"rate must be {MIN_RATE}-{MAX_RATE} words per minute, not {rate}")
        pitch = tts.pitch or DEFAULT_PITCH
        if not 0 <= pitch <= 100:
            raise BadInput(f"pitch must be 0-100, not {pitch}")
        language = (tts.language or "en").strip().lower()
        voice = voice_name(language, tts.voice)
        espeak = self._espeak or Espeak.shared()
        if not espeak.has_voice(voice):
            raise BadInput(f"no voice for language {language!r} (voice {voice!r}); try one of {EXAMPLE_LANGUAGES}")

        chunks = split_text(text)
        ctx.log(f"speaking {len(text)} characters in {len(chunks)} parts with voice {voice}")
        path = ctx.output_dir / OUTPUT_NAME
        frames = 0
        with wave.open(str(path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(espeak.sample_rate)
            for index, chunk in enumerate(chunks, start=1):
                ctx.check_cancelled()
                samples = espeak.synthesize(chunk, voice, rate, pitch)
                out.writeframes(samples.tobytes())
                frames += len(samples)
                ctx.progress(100 * index // len(chunks), f"spoke part {index} of {len(chunks)}")
        return EngineResult(
            outputs=[path],
            meta={
                "duration_seconds": round(frames / espeak.sample_rate, 3),
                "sample_rate": espeak.sample_rate,
                "format": "wav",
                "language": language,
            },
        )
