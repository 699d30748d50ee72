"""Text handling for the espeak-ng engines (TTS, voice cloning, dubbing, stories): voices, formats, sentences."""

from __future__ import annotations

import re

from services.common import engine_catalog
from services.workers.engines.base import BadInput
from services.workers.engines.toolkit.espeak import Espeak

MAX_CHUNK_CHARS = 400
SUPPORTED_FORMATS = tuple(engine_catalog.AUDIO_FORMATS)
EXAMPLE_LANGUAGES = "en, es, fr, de, it, pt"

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


def text_to_speak(text: str, limit: int | None) -> str:
    """The stripped text; BadInput when it is empty or longer than `limit` characters (the job type's limit)."""
    text = text.strip()
    if not text:
        raise BadInput("text is empty: nothing to speak")
    if limit is not None and len(text) > limit:
        raise BadInput(f"text is longer than {limit} characters")
    return text


def espeak_voice(espeak: Espeak, language: str, voice: str = "") -> tuple[str, str]:
    """(language, espeak voice name) for the parameters; BadInput when espeak-ng has no such voice."""
    language = (language or "en").strip().lower()
    name = voice_name(language, voice)
    if not espeak.has_voice(name):
        raise BadInput(f"no voice for language {language!r} (voice {name!r}); try one of {EXAMPLE_LANGUAGES}")
    return language, name
