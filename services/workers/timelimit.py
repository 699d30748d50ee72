"""Per-type time limits, and the deadline that asks a running engine to stop when one passes."""

from __future__ import annotations

import asyncio
from types import TracebackType

from services.workers.stop import StopFlag, StopReason


def parse_time_limits(text: str) -> dict[str, float]:
    """`TTS=120,DUBBING=3600` -> {"TTS": 120.0, "DUBBING": 3600.0}; ValueError on a malformed entry."""
    limits: dict[str, float] = {}
    for entry in text.split(","):
        if not entry.strip():
            continue
        name, sep, value = entry.partition("=")
        try:
            seconds = float(value)
        except ValueError:
            seconds = -1.0
        if not sep or not name.strip() or seconds <= 0:
            raise ValueError(f"bad time limit {entry.strip()!r}; write TYPE=SECONDS, e.g. TTS=120")
        limits[name.strip().upper()] = seconds
    return limits


def time_limit_for(job_type: str, limits: dict[str, float], default: float) -> float:
    """The limit of one attempt of `job_type`."""
    return limits.get(job_type.upper(), default)


class Deadline:
    """While entered, requests a TIME_LIMIT stop once `seconds` have passed."""

    def __init__(self, seconds: float, stop: StopFlag) -> None:
        self._seconds = seconds
        self._stop = stop
        self._handle: asyncio.TimerHandle | None = None

    async def __aenter__(self) -> Deadline:
        self._handle = asyncio.get_running_loop().call_later(self._seconds, self._stop.request, StopReason.TIME_LIMIT)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._handle is not None:
            self._handle.cancel()
