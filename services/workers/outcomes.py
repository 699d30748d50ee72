"""How an attempt ends, and the pure rules that decide it: retry or fail, and what a stop means."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from services.workers.engines.base import BadInput
from services.workers.stop import StopReason

BACKOFF_BASE_SECONDS = 2.0
BACKOFF_CAP_SECONDS = 60.0


@dataclass(frozen=True)
class Completed:
    """The engine produced outputs, now in the blob store."""

    output_keys: list[str]
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Failed:
    """The job is over without a result; no retry can help or none is left."""

    reason: str


@dataclass(frozen=True)
class Retry:
    """A transient fault: hand the message back to be delivered again after `delay` seconds."""

    reason: str
    delay: float


@dataclass(frozen=True)
class CancelledByRequest:
    """The job stopped because a user cancelled it."""


@dataclass(frozen=True)
class HandBack:
    """The worker is shutting down: the job goes back to the queue for another worker."""


Outcome = Completed | Failed | Retry | CancelledByRequest | HandBack


def backoff_seconds(delivery: int, base: float = BACKOFF_BASE_SECONDS, cap: float = BACKOFF_CAP_SECONDS) -> float:
    """Delay before delivery `delivery + 1`: base, 2 x base, 4 x base ... at most `cap`."""
    return float(min(cap, base * 2 ** max(0, delivery - 1)))


def describe(error: BaseException) -> str:
    """A one-line reason for an error."""
    text = str(error).strip()
    return text if text else type(error).__name__


def after_error(error: BaseException, delivery: int, max_deliver: int) -> Failed | Retry:
    """Bad input fails at once; anything else is retried until the last delivery, which fails the job."""
    reason = describe(error)
    if isinstance(error, BadInput):
        return Failed(reason)
    if delivery >= max_deliver:
        return Failed(f"gave up after {delivery} attempts: {reason}")
    return Retry(reason, backoff_seconds(delivery))


def after_stop(reason: StopReason, time_limit: float) -> Outcome:
    """What a stopped engine means for the job."""
    if reason is StopReason.CANCELLED:
        return CancelledByRequest()
    if reason is StopReason.TIME_LIMIT:
        return Failed(f"time limit of {time_limit:g} s exceeded")
    return HandBack()


def beyond_last_delivery(delivery: int, max_deliver: int) -> Failed | None:
    """The extra delivery after the last one: the worker of the last attempt died, so the job fails."""
    if delivery <= max_deliver:
        return None
    return Failed(f"gave up after {max_deliver} attempts: the worker running the last one stopped without an outcome")
