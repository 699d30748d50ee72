"""Failed-login throttling per username and per client address, shared through the database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from services.auth.models import LoginFailure
from services.common.errors import ResourceExhausted


@dataclass(frozen=True)
class ThrottlePolicy:
    """How many failures within a window lock a username or an address out."""

    window: timedelta
    max_per_user: int
    max_per_address: int


def retry_after(failures: list[datetime], limit: int, window: timedelta, now: datetime) -> float | None:
    """Seconds until fewer than `limit` of `failures` lie inside the window; None if not throttled.

    Pure so it can be tested without a database: the oldest failure that keeps the
    count at the limit decides when the lock lifts.
    """
    recent = sorted(t for t in failures if t > now - window)
    if len(recent) < limit:
        return None
    deciding = recent[len(recent) - limit]
    return max(0.0, (deciding + window - now).total_seconds())


class LoginThrottle:
    """Refuses logins after too many recent failures; records failures and clears on success."""

    def __init__(self, policy: ThrottlePolicy) -> None:
        self.policy = policy

    def check(self, session: Session, username: str, address: str, now: datetime) -> None:
        """Raise ResourceExhausted while the username or the address is locked out."""
        since = now - self.policy.window
        for column, value, limit in (
            (LoginFailure.username, username, self.policy.max_per_user),
            (LoginFailure.address, address, self.policy.max_per_address),
        ):
            times = list(
                session.scalars(
                    select(LoginFailure.at)
                    .where(column == value, LoginFailure.at > since)
                    .order_by(LoginFailure.at.desc())
                    .limit(limit)
                )
            )
            wait = retry_after(times, limit, self.policy.window, now)
            if wait is not None:
                raise ResourceExhausted(
                    f"too many failed logins; try again in {max(1, round(wait))} s", retry_after=wait
                )

    def record_failure(self, session: Session, username: str, address: str, now: datetime) -> None:
        """Remember a failed attempt, and forget ones older than the window."""
        session.add(LoginFailure(username=username, address=address, at=now))
        session.execute(delete(LoginFailure).where(LoginFailure.at < now - self.policy.window))

    def clear(self, session: Session, username: str) -> None:
        """Forget a username's failures after it logged in."""
        session.execute(delete(LoginFailure).where(LoginFailure.username == username))
