"""Failed-login throttling, shared by every auth replica through the database.

Three limits, chosen so that no single client can shut anyone else out (OWASP ASVS V2.2.1, docs/security.md):
- per (address, username) pair: guessing one password from one address stops after a few tries, and only
  that address waits; the owner logs in from anywhere else;
- per address: one address spraying many usernames is answered 429 with Retry-After, again only itself;
- per account: when failures on one username come from many distinct addresses (a distributed guess), the
  username is locked for everyone until they age out. One address counts once, however often it fails.
A success clears only the failures of its own pair, so the owner's login does not reset an attacker's count.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from services.auth.models import LoginFailure
from services.common.errors import ResourceExhausted

# One IPv6 client holds a whole /64; counting its addresses one by one would let it never repeat one.
IPV6_CLIENT_PREFIX = 64


@dataclass(frozen=True)
class ThrottlePolicy:
    """How many failures within which window throttle a pair, an address, or an account."""

    window: timedelta
    max_per_pair: int
    max_per_address: int
    account_window: timedelta
    max_addresses_per_account: int


def address_key(address: str) -> str:
    """The throttling key of a client address: the IPv4 address, or the IPv6 /64 it belongs to."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/{IPV6_CLIENT_PREFIX}", strict=False))
    return str(ip)


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


def _refuse(wait: float | None) -> None:
    if wait is not None:
        raise ResourceExhausted(f"too many failed logins; try again in {max(1, round(wait))} s", retry_after=wait)


class LoginThrottle:
    """Refuses logins after too many recent failures; records failures and clears a pair on success."""

    def __init__(self, policy: ThrottlePolicy) -> None:
        self.policy = policy

    def check(self, session: Session, username: str, address: str, now: datetime) -> None:
        """Raise ResourceExhausted while this pair, this address or this account is throttled."""
        key = address_key(address)
        policy = self.policy
        since = now - policy.window
        pair = session.scalars(
            select(LoginFailure.at)
            .where(LoginFailure.username == username, LoginFailure.address == key, LoginFailure.at > since)
            .order_by(LoginFailure.at.desc())
            .limit(policy.max_per_pair)
        )
        _refuse(retry_after(list(pair), policy.max_per_pair, policy.window, now))
        spray = session.scalars(
            select(LoginFailure.at)
            .where(LoginFailure.address == key, LoginFailure.at > since)
            .order_by(LoginFailure.at.desc())
            .limit(policy.max_per_address)
        )
        _refuse(retry_after(list(spray), policy.max_per_address, policy.window, now))
        # Each address's latest failure on this account: the lock lifts when enough of them age out.
        latest = session.scalars(
            select(func.max(LoginFailure.at))
            .where(LoginFailure.username == username, LoginFailure.at > now - policy.account_window)
            .group_by(LoginFailure.address)
        )
        _refuse(retry_after(list(latest), policy.max_addresses_per_account, policy.account_window, now))

    def record_failure(self, session: Session, username: str, address: str, now: datetime) -> None:
        """Remember a failed attempt, and forget ones older than every window."""
        session.add(LoginFailure(username=username, address=address_key(address), at=now))
        oldest_kept = now - max(self.policy.window, self.policy.account_window)
        session.execute(delete(LoginFailure).where(LoginFailure.at < oldest_kept))

    def clear(self, session: Session, username: str, address: str) -> None:
        """Forget this pair's failures after it logged in (other addresses' failures on the account stay)."""
        session.execute(
            delete(LoginFailure).where(LoginFailure.username == username, LoginFailure.address == address_key(address))
        )
