"""The context an engine runs with: reports go from the engine's thread to the event loop, in order."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path

from services.workers.events import EventPublisher
from services.workers.stop import StopFlag

Report = Callable[[], Awaitable[None]]


class RunContext:
    """The runtime's EngineContext. Reports are queued on the loop and published by `pump`, one at a time."""

    def __init__(
        self, output_dir: Path, stop: StopFlag, events: EventPublisher, loop: asyncio.AbstractEventLoop
    ) -> None:
        self._output_dir = output_dir
        self._stop = stop
        self._events = events
        self._loop = loop
        self._queue: asyncio.Queue[Report | None] = asyncio.Queue()
        self._closed = threading.Event()
        self._last_percent = -1

    @property
    def output_dir(self) -> Path:
        """Where the engine writes its files."""
        return self._output_dir

    def _report(self, report: Report) -> None:
        # After `close` an abandoned engine may still report; nobody publishes that any more.
        if not self._closed.is_set():
            self._loop.call_soon_threadsafe(self._queue.put_nowait, report)

    def progress(self, percent: int, message: str = "") -> None:
        """Report progress; a repeat of the last percentage is dropped."""
        percent = max(0, min(100, int(percent)))
        if percent == self._last_percent:
            return
        self._last_percent = percent
        self._report(lambda: self._events.progress(percent, message))

    def log(self, line: str, level: str = "info") -> None:
        """Add a line to the job's log."""
        self._report(lambda: self._events.log(line, level))

    def check_cancelled(self) -> None:
        """Raise Cancelled once a stop was requested."""
        self._stop.raise_if_requested()

    async def pump(self) -> None:
        """Publish reports in the order they were made, until `close`; EventPublishError ends it."""
        while (report := await self._queue.get()) is not None:
            await report()

    def close(self) -> None:
        """No more reports: `pump` publishes what is queued and returns (call on the loop)."""
        self._closed.set()
        self._queue.put_nowait(None)
