"""In-progress acks while a job runs, so JetStream does not hand the message to another worker."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from services.common.logging import get_logger
from services.workers.periodic import Periodic

log = get_logger(__name__)


def heartbeat_interval(ack_wait: float) -> float:
    """A third of AckWait: two beats may be lost before the message is redelivered."""
    return ack_wait / 3


class Heartbeat(Periodic):
    """While entered, calls `beat` (e.g. `msg.in_progress`) every `interval` seconds."""

    def __init__(self, beat: Callable[[], Awaitable[None]], interval: float) -> None:
        super().__init__(interval, first_delay=interval)
        self._beat = beat
        self.beats = 0

    async def step(self) -> bool:
        """Send one beat; a lost one is retried at the next interval."""
        try:
            await self._beat()
            self.beats += 1
        except Exception as exc:  # NATS may be reconnecting; the next beat tries again
            log.warning("heartbeat failed", error=str(exc))
        return True
