"""A timed transcript (segments of words) and the text formats it is written in: SRT, WebVTT, plain text."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

_SENTENCE_END = re.compile(r"[.!?\u2026\u3002\uff01\uff1f][\"')\]]*$")


@dataclass(frozen=True)
class Word:
    """One recognised word and when it was spoken, in seconds."""

    start: float
    end: float
    word: str


@dataclass(frozen=True)
class Segment:
    """A stretch of speech (about a sentence) with its text and words."""

    start: float
    end: float
    text: str
    words: tuple[Word, ...] = field(default=())
    # How Whisper decoded it (absent for segments not from Whisper, such as pieces cut by split_sentences).
    decoding: Decoded | None = None


@dataclass(frozen=True)
class Decoded:
    """Whisper's own figures for one segment: what OpenAI's verbose transcripts carry."""

    seek: int  # where its window starts, in 10 ms frames from the start of the file
    tokens: tuple[int, ...]
    temperature: float
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float


def split_sentences(segment: Segment, pause: float = 0.5) -> list[Segment]:
    """The segment cut after each sentence end and at each pause of `pause` seconds, by its word timings.

    Whisper often hears several sentences as one segment; dubbing wants each in its own time slot.
    """
    pieces: list[Segment] = []
    current: list[Word] = []
    for index, word in enumerate(segment.words):
        current.append(word)
        following = segment.words[index + 1] if index + 1 < len(segment.words) else None
        if following is None or following.start - word.end >= pause or _SENTENCE_END.search(word.word.strip()):
            text = "".join(w.word for w in current).strip()
            if text:
                pieces.append(Segment(current[0].start, current[-1].end, text, tuple(current)))
            current = []
    return pieces or [segment]


def format_timestamp(seconds: float, decimal_mark: str) -> str:
    """HH:MM:SS plus milliseconds after `decimal_mark` ("," for SRT, "." for WebVTT)."""
    millis = round(max(seconds, 0.0) * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal_mark}{millis:03d}"


def to_srt(segments: Sequence[Segment]) -> str:
    """SubRip subtitles: numbered cues separated by blank lines."""
    cues = [
        f"{index}\n{format_timestamp(s.start, ',')} --> {format_timestamp(s.end, ',')}\n{s.text}\n"
        for index, s in enumerate(segments, start=1)
    ]
    return "\n".join(cues)


def to_vtt(segments: Sequence[Segment]) -> str:
    """WebVTT subtitles."""
    cues = [f"{format_timestamp(s.start, '.')} --> {format_timestamp(s.end, '.')}\n{s.text}\n" for s in segments]
    return "\n".join(["WEBVTT\n", *cues])


def to_text(segments: Sequence[Segment]) -> str:
    """The plain transcript, one segment per line."""
    return "".join(f"{s.text}\n" for s in segments)
