"""Text to speech with espeak-ng: offline, many languages; 16-bit mono WAV, MP3 or OGG (Opus)."""

from __future__ import annotations

import re
import wave
from pathlib import Path
from typing import cast

from aiorch.jobs.v1 import types_pb2
from google.protobuf.message import Message

from services.workers.engines._espeak import DEFAULT_PITCH, DEFAULT_RATE, Espeak
from services.workers.engines.base import BadInput, EngineContext, EngineResult
from services.workers.engines.media import encode_audio

MAX_TEXT_CHARS = 100_000
MAX_CHUNK_CHARS = 400
MIN_RATE, MAX_RATE = 80, 450
MIN_PITCH, MAX_PITCH = 0, 100
SUPPORTED_FORMATS = ("wav", "mp3", "ogg")
EXAMPLE_LANGUAGES = "en, es, fr, de, it, pt"
OUTPUT_STEM = "speech"

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


def output_format(fmt: str) -> str:
    """The normalised output format ("" means wav); BadInput lists the supported ones."""
    fmt = (fmt or "wav").strip().lower()
    if fmt not in SUPPORTED_FORMATS:
        raise BadInput(f"format {fmt!r} is not supported; choose one of {', '.join(SUPPORTED_FORMATS)}")
    return fmt


def text_to_speak(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    """The stripped text; BadInput when it is empty or longer than `limit` characters."""
    text = text.strip()
    if not text:
        raise BadInput("text is empty: nothing to speak")
    if len(text) > limit:
        raise BadInput(f"text is longer than {limit} characters")
    return text


def espeak_voice(espeak: Espeak, language: str, voice: str = "") -> tuple[str, str]:
    """(language, espeak voice name) for the parameters; BadInput when espeak-ng has no such voice."""
    language = (language or "en").strip().lower()
    name = voice_name(language, voice)
    if not espeak.has_voice(name):
        raise BadInput(f"no voice for language {language!r} (voice {name!r}); try one of {EXAMPLE_LANGUAGES}")
    return language, name


class EspeakTts:
    """TTS engine on espeak-ng; the text is spoken sentence by sentence so progress and cancel are real."""

    job_type = "TTS"

    def __init__(self, espeak: Espeak | None = None) -> None:
        self._espeak = espeak

    def run(self, params: Message, inputs: list[Path], ctx: EngineContext) -> EngineResult:
        """Speak `params.text` into speech.wav, speech.mp3 or speech.ogg."""
        tts = cast(types_pb2.TtsParams, params)
        fmt = output_format(tts.format)
        text = text_to_speak(tts.text)
        # proto3 integers have no presence: 0 means "not given", so espeak's defaults apply.
        rate = tts.rate or DEFAULT_RATE
        if not MIN_RATE <= rate <= MAX_RATE:
            raise BadInput(f"rate must be {MIN_RATE}-{MAX_RATE} words per minute (0 for the default), not {rate}")
        pitch = tts.pitch or DEFAULT_PITCH
        if not MIN_PITCH <= pitch <= MAX_PITCH:
            raise BadInput(f"pitch must be {MIN_PITCH}-{MAX_PITCH} (0 for the default), not {pitch}")
        espeak = self._espeak or Espeak.shared()
        language, voice = espeak_voice(espeak, tts.language, tts.voice)

        chunks = split_text(text)
        ctx.log(f"speaking {len(text)} characters in {len(chunks)} parts with voice {voice}")
        # Encoding is one more step after speaking when the format is not WAV.
        steps = len(chunks) + (fmt != "wav")
        wav_path = ctx.output_dir / f"{OUTPUT_STEM}.wav"
        frames = 0
        with wave.open(str(wav_path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(espeak.sample_rate)
            for index, chunk in enumerate(chunks, start=1):
                ctx.check_cancelled()
                samples = espeak.synthesize(chunk, voice, rate, pitch)
                out.writeframes(samples.tobytes())
                frames += len(samples)
                ctx.progress(100 * index // steps, f"spoke part {index} of {len(chunks)}")
        path = wav_path
        if fmt != "wav":
            ctx.check_cancelled()
            path = encode_audio(wav_path, ctx.output_dir / f"{OUTPUT_STEM}.{fmt}", fmt)
            wav_path.unlink()
            ctx.progress(100, f"encoded {fmt}")
        return EngineResult(
            outputs=[path],
            meta={
                "duration_seconds": round(frames / espeak.sample_rate, 3),
                "sample_rate": espeak.sample_rate,
                "format": fmt,
                "language": language,
            },
        )
