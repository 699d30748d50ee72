"""A task that repeats a step while a block runs: the base of the heartbeat and the cancel watch."""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from typing import Self


class Periodic:
    """While entered, runs `step` after `first_delay` and then every `interval` seconds until it returns False.

    Leaving sets a closing flag besides cancelling the task: on Python 3.11 `asyncio.wait_for` (used inside
    nats-py) can swallow a cancellation that arrives as its inner call completes, and a loop that relied on
    the cancellation alone would then never end.
    """

    def __init__(self, interval: float, first_delay: float) -> None:
        self._interval = interval
        self._first_delay = first_delay
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def step(self) -> bool:
        """One step; False ends the repetition."""
        raise NotImplementedError

    async def _run(self) -> None:
        delay = self._first_delay
        while not self._closing.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), delay)
                return
            if not await self.step():
                return
            delay = self._interval

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._closing.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
