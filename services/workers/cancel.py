"""Cancel requests: the jobs service writes the attempt to stop under the job id in a KV bucket."""

from __future__ import annotations

import nats.errors
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from services.common.logging import get_logger
from services.workers.periodic import Periodic
from services.workers.stop import StopFlag, StopReason

log = get_logger(__name__)

POLL_SECONDS = 0.3


def cancel_requested(value: bytes | None, attempt: int) -> bool:
    """Whether a stored flag stops `attempt`: its value is the attempt number to stop (or a later one).

    A flag that is present but not a number stops every attempt: someone wanted the job stopped.
    """
    if value is None:
        return False
    try:
        return int(value.decode().strip()) >= attempt
    except ValueError:
        return True


class CancelFlags:
    """Reads the cancel bucket."""

    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv

    async def requested(self, job_id: str, attempt: int) -> bool:
        """Whether this attempt of the job is to be cancelled."""
        try:
            entry = await self._kv.get(job_id)
        except KeyNotFoundError:
            return False
        return cancel_requested(entry.value, attempt)

    def watch(self, job_id: str, attempt: int, stop: StopFlag) -> CancelWatch:
        """A context that requests a CANCELLED stop once the flag appears."""
        return CancelWatch(self, job_id, attempt, stop)


class CancelWatch(Periodic):
    """While entered, polls the job's flag every POLL_SECONDS (a cancel is honoured within about a second)."""

    def __init__(self, flags: CancelFlags, job_id: str, attempt: int, stop: StopFlag) -> None:
        super().__init__(POLL_SECONDS, first_delay=0)
        self._flags = flags
        self._job_id = job_id
        self._attempt = attempt
        self._stop = stop

    async def step(self) -> bool:
        """Look at the flag once; stop polling once the job is asked to stop for any reason."""
        try:
            if await self._flags.requested(self._job_id, self._attempt):
                self._stop.request(StopReason.CANCELLED)
        except (nats.errors.Error, OSError, TimeoutError) as exc:
            # NATS is reconnecting: the next poll tries again.
            log.warning("cannot read cancel flag", job_id=self._job_id, error=str(exc))
        return not self._stop.requested
