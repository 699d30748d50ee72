"""Which engine runs which job type."""

from __future__ import annotations

import importlib
from typing import cast

from services.workers.engines.base import Engine

# Job type -> "module:class" of its CPU engine. Imported on first use, so a worker that takes only
# TTS never loads Whisper or OpenCV; a GPU engine replaces an entry by configuration of its worker.
ENGINES: dict[str, str] = {
    "STT": "services.workers.engines.stt:WhisperStt",
    "TTS": "services.workers.engines.tts:EspeakTts",
    "VOICE_CLONING": "services.workers.engines.voice_cloning:WorldVoiceCloning",
    "DUBBING": "services.workers.engines.dubbing:ApertiumDubbing",
    "AI_STORIES": "services.workers.engines.stories:TalkingHead",
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
    module, _, name = ENGINES[job_type].partition(":")
    return cast(Engine, getattr(importlib.import_module(module), name)())
