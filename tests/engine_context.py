"""The EngineContext the engine tests run engines with: it records what they report."""

from __future__ import annotations

from pathlib import Path

from services.workers.engines.base import Cancelled


class RecordingContext:
    """Records progress, messages and log lines; asks the engine to stop after `stop_after` progress reports."""

    def __init__(self, output_dir: Path, stop_after: int | None = None) -> None:
        self.output_dir = output_dir
        self.percents: list[int] = []
        self.messages: list[str] = []
        self.lines: list[str] = []
        self._stop_after = stop_after

    def progress(self, percent: int, message: str = "") -> None:
        self.percents.append(percent)
        self.messages.append(message)

    def log(self, line: str, level: str = "info") -> None:
        self.lines.append(line)

    def check_cancelled(self) -> None:
        if self._stop_after is not None and len(self.percents) >= self._stop_after:
            raise Cancelled("stop requested")
