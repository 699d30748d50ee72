"""Whether a worker's consumers still fetch: what its /healthz answers, and so its liveness probe.

A TCP check of the metrics port passes while the fetch loop is stuck (a fetch that never returns) or the
NATS connection never comes back; this looks at both. A consumer is alive while its loop came round within
`stale_after_seconds` (each round ends within FETCH_TIMEOUT_SECONDS), or while it waits because all its
slots run jobs (a long job is no stall). A fetch also ends, with a timeout, while the client reconnects, so
the connection is judged on its own: lost for longer than `stale_after_seconds`, counted from the first
health check that saw it down, is a problem too.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Protocol

# Thirty one-second fetch rounds missed: longer than a NATS node's restart, after which a client has
# reconnected to another node.
STALE_AFTER_SECONDS = 30.0


class FetchLoop(Protocol):
    """What liveness reads of a consumer (services/workers/consumer.py TypeConsumer)."""

    last_round: float
    saturated: bool


class WorkerLiveness:
    """The problem with a worker's consumers, or None while every one of them fetches or is busy."""

    def __init__(self, stale_after_seconds: float = STALE_AFTER_SECONDS) -> None:
        self._stale_after = stale_after_seconds
        self._consumers: Sequence[FetchLoop] = ()
        self._connected: Callable[[], bool] = lambda: False
        self._running = False
        self._disconnected_since: float | None = None

    def running(self, consumers: Sequence[FetchLoop], connected: Callable[[], bool]) -> None:
        """The consumers' loops have started on a connection for which `connected()` says whether it is up."""
        self._consumers = consumers
        self._connected = connected
        self._running = True

    def problem(self) -> str | None:
        """None when alive, else a line saying why not (the /healthz body)."""
        if not self._running:
            return "starting: consumers not running yet"
        now = time.monotonic()
        if self._connected():
            self._disconnected_since = None
        else:
            self._disconnected_since = self._disconnected_since or now
            if now - self._disconnected_since > self._stale_after:
                return f"no NATS connection for {now - self._disconnected_since:.0f} s"
        stalled = [now - c.last_round for c in self._consumers if not c.saturated]
        worst = max(stalled, default=0.0)
        if worst > self._stale_after:
            return f"a consumer's fetch loop has not come round for {worst:.0f} s"
        return None
