"""Which engine runs which job type."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from services.workers.engines.base import Engine
from services.workers.engines.tts import EspeakTts
from services.workers.engines.unavailable import NoEngine

ENGINES: dict[str, Callable[[], Engine]] = {
    "STT": partial(NoEngine, "STT"),
    "TTS": EspeakTts,
    "VOICE_CLONING": partial(NoEngine, "VOICE_CLONING"),
    "DUBBING": partial(NoEngine, "DUBBING"),
    "AI_STORIES": partial(NoEngine, "AI_STORIES"),
}


def parse_job_types(text: str) -> list[str]:
    """Job type names from a comma-separated list (any case); ValueError names an unknown one."""
    names: list[str] = []
    for raw in text.split(","):
        name = raw.strip().upper()
        if not name:
            continue
        if name not in ENGINES:
            raise ValueError(f"unknown job type {raw.strip()!r} in worker types; choose from {', '.join(ENGINES)}")
        if name not in names:
            names.append(name)
    if not names:
        raise ValueError(f"no job types given; choose from {', '.join(ENGINES)}")
    return names


def create_engine(job_type: str) -> Engine:
    """A new engine for a job type name such as "TTS"."""
    return ENGINES[job_type]()
