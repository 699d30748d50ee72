"""What a worker reports about a job, as the jobs service's domain sees it (decoded once, in convert.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from services.jobs.lifecycle import EventKind


@dataclass(frozen=True)
class WorkerEvent:
    """One event of one delivery of one attempt; only the fields of its `kind` are set."""

    job_id: str
    kind: EventKind
    attempt: int
    delivery: int
    sequence: int
    worker_id: str = ""
    grant: str = ""
    time_limit_seconds: float = 0.0  # started
    percent: int = 0  # progress
    message: str = ""  # progress
    line: str = ""  # log
    level: str = ""  # log
    output_keys: tuple[str, ...] = ()  # completed
    meta: Mapping[str, Any] = field(default_factory=dict)  # completed
    reason: str = ""  # failed
