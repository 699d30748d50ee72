"""Revoked sessions: every service's local view of the `token_revocations` bucket.

Services verify access tokens with the public key alone, so a token would stay valid until it
expires after a logout, a deactivation or a role change. The auth service therefore writes the
token family (the login session an access token belongs to, its `fam` claim) into a JetStream KV
bucket, through its outbox, in the transaction that ends the session. Every service watches the
bucket and its auth interceptor refuses tokens of a revoked family.

The view is a KvMirror: it fails closed at start, and catches up after NATS was unreachable (the
entries outlive every access token, so a late revocation still applies).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import Gauge

from services.common import messaging
from services.common.kv_mirror import KvMirror
from services.common.outbox import OutboxMessage

REVOKED_FAMILIES = Gauge("aiorch_revoked_token_families", "Revoked token families this process knows of.")

_FAMILY_PREFIX = messaging.revocation_key("")


def revocation_message(family_id: str, revoked_at: float) -> OutboxMessage:
    """The outbox message that revokes every token of one family (value: the revocation time)."""
    return OutboxMessage(
        subject=messaging.revocation_subject(family_id),
        msg_id=f"revoke:{family_id}",
        payload=f"{revoked_at:.3f}".encode(),
    )


class RevocationView(KvMirror):
    """The set of revoked token families, kept current by watching the bucket."""

    def __init__(self, resync_seconds: float = 30.0, max_age_seconds: float = messaging.REVOCATIONS_MAX_AGE_SECONDS):
        super().__init__(messaging.REVOCATIONS_BUCKET, resync_seconds)
        self._families: dict[str, float] = {}
        self._listeners: list[Callable[[str], None]] = []
        self._max_age = max_age_seconds

    def is_revoked(self, family_id: str) -> bool:
        """True when the family's tokens have been revoked."""
        return family_id in self._families

    def revoke(self, family_id: str, revoked_at: float) -> None:
        """Record a revocation (from the bucket; tests call it directly) and tell the listeners."""
        known = family_id in self._families
        self._families[family_id] = revoked_at
        REVOKED_FAMILIES.set(len(self._families))
        if not known:
            for listener in self._listeners:
                listener(family_id)

    def on_revoke(self, listener: Callable[[str], None]) -> None:
        """Call `listener(family_id)` on every new revocation: open streams end at once, not at their next call."""
        self._listeners.append(listener)

    def on_quiet(self) -> None:
        # The bucket drops entries after max age; so does the view, to stay bounded.
        horizon = time.time() - self._max_age
        for family_id in [f for f, at in self._families.items() if at < horizon]:
            del self._families[family_id]
        REVOKED_FAMILIES.set(len(self._families))

    def apply(self, key: str, value: bytes | None) -> None:
        if value is None or not key.startswith(_FAMILY_PREFIX):
            return
        self.revoke(key[len(_FAMILY_PREFIX) :], _revoked_at(value))


def _revoked_at(value: bytes | None) -> float:
    try:
        return float((value or b"").decode())
    except ValueError:
        # An unreadable value still revokes; its age counts from now.
        return time.time()
