"""Stand-in for job types whose engine has not been released: fails the job at once, with a clear reason."""

from __future__ import annotations

from pathlib import Path

from google.protobuf.message import Message

from services.workers.engines.base import BadInput, EngineContext, EngineResult


class NoEngine:
    """Refuses every job of its type; no retry can help."""

    def __init__(self, job_type: str) -> None:
        self.job_type = job_type

    def run(self, params: Message, inputs: list[Path], ctx: EngineContext) -> EngineResult:
        """Raise BadInput naming the missing engine."""
        raise BadInput(f"no engine for {self.job_type} yet: it lands with the engines release")
