"""API keys: their format, their hash, and every service's local copy of the live ones.

A key reads `aio_<id>_<secret>`: the id names it in lists and logs, the secret (32 random bytes) makes
it unguessable. The auth service stores only a SHA-256 of the whole key: a key carries 256 bits of
entropy, so a slow password hash would add cost and no safety. It announces every key's state (its
user, effective role, project scope, expiry, and whether it may be used) into the `api_keys` bucket,
through its outbox, in the transaction that changes it; every service's auth interceptor checks keys
against its copy of the bucket, so a revoked key is refused as fast as a revoked session.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from nats.aio.client import Client as NatsClient
from prometheus_client import Counter, Gauge

from services.common import messaging
from services.common.errors import Unauthenticated
from services.common.identity import Caller, Role
from services.common.kv_mirror import KvMirror
from services.common.logging import get_logger
from services.common.loops import TRANSIENT
from services.common.outbox import OutboxMessage

log = get_logger(__name__)

KEY_PREFIX = "aio_"
_ID_LENGTH = 16  # hex digits
_SECRET_BYTES = 32
# A service reports a key's use at most this often; "last used" is known to about this precision.
USE_REPORT_SECONDS = 60.0

# An unknown key id is read from the bucket at most once in this time (forged keys cost no NATS flood).
MISS_SECONDS = 1.0
MAX_MISSES = 10_000

LIVE_KEYS = Gauge("aiorch_api_keys_live", "API keys this process would accept.")
KEY_REFUSALS = Counter("aiorch_api_key_refusals_total", "API keys refused, by reason.", ["reason"])


@dataclass(frozen=True)
class NewKey:
    """A freshly made key: its id, the whole key (shown once) and the hash that is stored."""

    id: str
    secret: str
    hash: str


def make_key() -> NewKey:
    """A new random key."""
    key_id = secrets.token_hex(_ID_LENGTH // 2)
    secret = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(_SECRET_BYTES)}"
    return NewKey(id=key_id, secret=secret, hash=hash_key(secret))


def hash_key(secret: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(secret.encode()).hexdigest()


def looks_like_key(token: str) -> bool:
    """True for a bearer credential in the key format (anything else is taken for a JWT)."""
    return token.startswith(KEY_PREFIX)


def key_id_of(secret: str) -> str:
    """The id inside a key, or Unauthenticated for a malformed one."""
    key_id = secret[len(KEY_PREFIX) : len(KEY_PREFIX) + _ID_LENGTH]
    if (
        not looks_like_key(secret)
        or len(key_id) != _ID_LENGTH
        or secret[len(KEY_PREFIX) + _ID_LENGTH : len(KEY_PREFIX) + _ID_LENGTH + 1] != "_"
        or any(c not in "0123456789abcdef" for c in key_id)
    ):
        raise Unauthenticated("API key is not valid")
    return key_id


def prefix_of(key_id: str) -> str:
    """What lists show of a key."""
    return f"{KEY_PREFIX}{key_id}"


def key_family(key_id: str) -> str:
    """The session family a key's calls belong to: open streams started with the key end with it."""
    return f"apikey:{key_id}"


@dataclass(frozen=True)
class KeyState:
    """What every service knows of one key."""

    hash: str
    user_id: uuid.UUID
    role: Role
    project_id: uuid.UUID | None
    expires_at: float | None
    usable: bool  # False once revoked or while its user is deactivated

    def to_json(self) -> bytes:
        """The bucket value."""
        return json.dumps(
            {
                "hash": self.hash,
                "user_id": str(self.user_id),
                "role": self.role.value,
                "project_id": str(self.project_id) if self.project_id else "",
                "expires_at": self.expires_at,
                "usable": self.usable,
            }
        ).encode()

    @classmethod
    def from_json(cls, value: bytes) -> KeyState:
        """The state in a bucket value; ValueError for an unreadable one."""
        data = json.loads(value)
        return cls(
            hash=str(data["hash"]),
            user_id=uuid.UUID(str(data["user_id"])),
            role=Role(str(data["role"])),
            project_id=uuid.UUID(data["project_id"]) if data.get("project_id") else None,
            expires_at=float(data["expires_at"]) if data.get("expires_at") is not None else None,
            usable=bool(data["usable"]),
        )


def key_state_message(key_id: str, state: KeyState, version: int) -> OutboxMessage:
    """The outbox message that puts a key's state into the bucket (`version` keeps each change distinct)."""
    return OutboxMessage(
        subject=messaging.api_key_subject(key_id), msg_id=f"apikey:{key_id}:{version}", payload=state.to_json()
    )


class ApiKeyView(KvMirror):
    """The keys every service accepts, kept current by watching the `api_keys` bucket."""

    def __init__(self, resync_seconds: float = 30.0, clock: Callable[[], float] = time.time) -> None:
        super().__init__(messaging.API_KEYS_BUCKET, resync_seconds)
        self._keys: dict[str, KeyState] = {}
        self._listeners: list[Callable[[str], None]] = []
        self._clock = clock
        self._used: dict[str, float] = {}
        self._missed: dict[str, float] = {}
        self._reported: dict[str, float] = {}

    def apply(self, key: str, value: bytes | None) -> None:
        key_id = key.removeprefix(messaging.api_key_key(""))
        state: KeyState | None = None
        if value is not None:
            try:
                state = KeyState.from_json(value)
            except (ValueError, KeyError, TypeError):
                log.warning("unreadable API key entry; the key is refused", key_id=key_id)
        self.put(key_id, state)

    def put(self, key_id: str, state: KeyState | None) -> None:
        """Record a key's state (None or unusable: refused) and end its streams when it stops working."""
        was_usable = key_id in self._keys
        if state is not None and state.usable:
            self._keys[key_id] = state
        else:
            self._keys.pop(key_id, None)
            if was_usable:
                for listener in self._listeners:
                    listener(key_family(key_id))
        LIVE_KEYS.set(len(self._keys))

    def on_revoke(self, listener: Callable[[str], None]) -> None:
        """Call `listener(family)` when a key stops working: its open streams end at once."""
        self._listeners.append(listener)

    async def caller(self, secret: str) -> Caller:
        """The Caller a key stands for, or Unauthenticated."""
        key_id = key_id_of(secret)
        state = self._keys.get(key_id)
        if state is None and self._clock() - self._missed.get(key_id, -MISS_SECONDS) >= MISS_SECONDS:
            # Created a moment ago, its entry maybe not yet watched here: read it from the bucket once.
            self._missed[key_id] = self._clock()
            if len(self._missed) > MAX_MISSES:
                self._missed.clear()
            with contextlib.suppress(*TRANSIENT):
                await self.read_through(messaging.api_key_key(key_id))
            state = self._keys.get(key_id)
        if state is None or not hmac.compare_digest(state.hash, hash_key(secret)):
            KEY_REFUSALS.labels("unknown").inc()
            raise Unauthenticated("API key is not valid or has been revoked")
        now = self._clock()
        if state.expires_at is not None and state.expires_at <= now:
            KEY_REFUSALS.labels("expired").inc()
            raise Unauthenticated("API key has expired")
        self._used[key_id] = now
        return Caller(
            user_id=state.user_id,
            role=state.role,
            token_id=key_id,
            family_id=key_family(key_id),
            token=secret,
            expires_at=state.expires_at or 0.0,
            project_scope=state.project_id,
            api_key_id=key_id,
        )

    def uses_to_report(self) -> dict[str, float]:
        """Keys used since their last report that is at least USE_REPORT_SECONDS old: id -> last use."""
        now = self._clock()
        due = {
            key_id: at
            for key_id, at in self._used.items()
            if now - self._reported.get(key_id, -USE_REPORT_SECONDS) >= USE_REPORT_SECONDS
        }
        for key_id in due:
            self._reported[key_id] = now
            del self._used[key_id]
        return due

    async def report_uses(self, nc: NatsClient) -> float:
        """One pass of the use reports (core NATS; a lost report only makes "last used" older)."""
        due = self.uses_to_report()
        if due:
            await nc.publish(messaging.API_KEY_USED_SUBJECT, json.dumps(due).encode())
        return USE_REPORT_SECONDS / 6
