"""Which engine runs which job type."""

from __future__ import annotations

import importlib
from typing import cast

from services.workers.engines.base import Engine

# Job type -> "module:class" of its CPU engine. Imported on first use, so a worker that takes only
# TTS never loads Whisper or OpenCV. A worker Deployment swaps in another engine (a GPU one) with
# AIORCH_WORKER_ENGINES, e.g. "STT=mycompany.engines:GpuWhisper".
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


def parse_engine_overrides(text: str) -> dict[str, str]:
    """`TYPE=module:Class` pairs, comma separated; ValueError names what is wrong."""
    overrides: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        job_type, _, target = item.partition("=")
        job_type = job_type.strip().upper()
        if job_type not in ENGINES:
            raise ValueError(f"engine override for unknown job type {job_type!r}; choose from {', '.join(ENGINES)}")
        if ":" not in target:
            raise ValueError(f"engine override {item!r} must look like TYPE=module:Class")
        overrides[job_type] = target.strip()
    return overrides


def create_engine(job_type: str, overrides: dict[str, str] | None = None) -> Engine:
    """A new engine for a job type name such as "TTS" (an override names another class)."""
    module, _, name = (overrides or {}).get(job_type, ENGINES[job_type]).partition(":")
    try:
        factory = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot load the {job_type} engine {module}:{name}: {exc}") from exc
    return cast(Engine, factory())
