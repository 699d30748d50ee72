"""The stop flag of one running job: set on the event loop, read by the engine's thread."""

from __future__ import annotations

import asyncio
import threading
from enum import StrEnum

from services.workers.engines.base import Cancelled


class StopReason(StrEnum):
    """Why a running job was asked to stop."""

    CANCELLED = "cancelled"  # a user cancelled the job
    TIME_LIMIT = "time_limit"  # the attempt ran past its type's time limit
    SHUTDOWN = "shutdown"  # the worker is stopping and hands the job back


class StopFlag:
    """Set once, with the first reason; later requests keep that reason."""

    def __init__(self) -> None:
        self._set = threading.Event()
        self._awaitable = asyncio.Event()
        self.reason: StopReason | None = None

    def request(self, reason: StopReason) -> None:
        """Ask the job to stop (call on the event loop)."""
        if self.reason is None:
            self.reason = reason
            self._set.set()
            self._awaitable.set()

    @property
    def requested(self) -> bool:
        """Whether a stop was asked for; safe from any thread."""
        return self._set.is_set()

    def raise_if_requested(self) -> None:
        """Raise Cancelled if a stop was asked for; safe from any thread."""
        if self._set.is_set():
            raise Cancelled(self.reason.value if self.reason else "stop requested")

    async def wait(self) -> StopReason:
        """Until a stop is asked for; returns why."""
        await self._awaitable.wait()
        assert self.reason is not None
        return self.reason
