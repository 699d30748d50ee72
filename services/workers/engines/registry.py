"""Which engine runs which job type: the default of services/common/job_types.py, or an override."""

from __future__ import annotations

import importlib
from typing import cast

from services.common import job_types
from services.workers.engines.base import Engine

# Engines are named "module:class" and imported on first use, so a worker that takes only TTS never loads
# Whisper or OpenCV. A worker Deployment swaps in another engine (a GPU one) with AIORCH_WORKER_ENGINES,
# e.g. "STT=mycompany.engines:GpuWhisper".
ENGINES: dict[str, str] = {spec.name: spec.engine for spec in job_types.JOB_TYPES}


def parse_job_types(text: str) -> list[str]:
    """Job type names from a comma-separated list (any case); ValueError names an unknown one."""
    return job_types.parse_names(text)


def parse_engine_overrides(text: str) -> dict[str, str]:
    """`TYPE=module:Class` pairs, comma separated; ValueError names what is wrong."""
    overrides: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        job_type, _, target = item.partition("=")
        name = job_types.get(job_type).name
        if ":" not in target:
            raise ValueError(f"engine override {item!r} must look like TYPE=module:Class")
        overrides[name] = target.strip()
    return overrides


def create_engine(job_type: str, overrides: dict[str, str] | None = None) -> Engine:
    """A new engine for a job type, by its registry name (an override names another class)."""
    module, _, name = (overrides or {}).get(job_type, ENGINES[job_type]).partition(":")
    try:
        factory = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot load the {job_type} engine {module}:{name}: {exc}") from exc
    return cast(Engine, factory())
