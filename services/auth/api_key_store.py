"""API keys in the auth service: who may create, list and revoke them, and announcing their state.

Every change to what a key may do (created, revoked, its user's role changed or its user deactivated or
reactivated) is announced into the `api_keys` bucket in the same transaction, through the outbox, so
each service's copy (services/common/api_keys.py) follows the database.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from services.auth.models import OUTBOX, ApiKey, User
from services.common.api_keys import KeyState, key_state_message, make_key, prefix_of
from services.common.db import Database, utcnow
from services.common.errors import InvalidArgument, NotFound, PermissionDenied
from services.common.identity import Caller, Role
from services.common.logging import get_logger
from services.common.outbox import OutboxMessage, enqueue
from services.common.pagination import next_page_token, read_page

log = get_logger(__name__)

MAX_NAME_LENGTH = 200
# What a role may grant a key: its own rank or lower. A service account's keys are service keys.
_RANK = {Role.VIEWER: 1, Role.EDITOR: 2, Role.ADMIN: 3}


def effective_role(key_role: Role, user_role: Role) -> Role:
    """The role a key acts with: the lower of the one it was given and its user's present role."""
    if Role.SERVICE in (key_role, user_role):
        return Role.SERVICE if key_role is user_role else Role.VIEWER
    return key_role if _RANK[key_role] <= _RANK[user_role] else user_role


@dataclass(frozen=True)
class NewApiKey:
    """What a caller asks for."""

    name: str
    role: str = ""
    project_id: str = ""
    expires_at: datetime | None = None
    user_id: str = ""


@dataclass(frozen=True)
class ApiKeyView:
    """A key as the API lists it (never its secret or hash)."""

    id: str
    name: str
    user_id: uuid.UUID
    role: Role
    project_id: uuid.UUID | None
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    active: bool

    @property
    def prefix(self) -> str:
        """The start of the key, to recognise it."""
        return prefix_of(self.id)

    @classmethod
    def of(cls, row: ApiKey, user: User, now: datetime) -> ApiKeyView:
        """The view of a row whose user is `user`."""
        return cls(
            id=row.id,
            name=row.name,
            user_id=row.user_id,
            role=effective_role(Role(row.role), Role(user.role)),
            project_id=row.project_id,
            created_at=row.created_at,
            expires_at=row.expires_at,
            last_used_at=row.last_used_at,
            revoked_at=row.revoked_at,
            active=_usable(row, user) and (row.expires_at is None or row.expires_at > now),
        )


@dataclass(frozen=True)
class ApiKeyPage:
    """One page of keys."""

    keys: list[ApiKeyView]
    next_page_token: str


def _usable(row: ApiKey, user: User) -> bool:
    return row.revoked_at is None and user.active


@dataclass(frozen=True)
class Announcement:
    """An outbox row that announces a key's state: its id and message, for a hand-off after the commit."""

    row_id: int
    message: OutboxMessage


@dataclass(frozen=True)
class CreatedKey:
    """A new key: its view, its secret (shown once) and its announcement."""

    view: ApiKeyView
    secret: str
    announcement: Announcement


def announce(session: Session, row: ApiKey, user: User) -> Announcement:
    """Put the key's present state into the bucket, with the change that made it."""
    row.version += 1
    state = KeyState(
        hash=row.secret_hash,
        user_id=row.user_id,
        role=effective_role(Role(row.role), Role(user.role)),
        project_id=row.project_id,
        expires_at=row.expires_at.timestamp() if row.expires_at else None,
        usable=_usable(row, user),
    )
    message = key_state_message(row.id, state, row.version)
    return Announcement(enqueue(session, OUTBOX, message), message)


def announce_user_keys(session: Session, user: User) -> None:
    """Announce every unrevoked key of a user whose role or active flag just changed."""
    rows = session.scalars(
        select(ApiKey).where(ApiKey.user_id == user.id, ApiKey.revoked_at.is_(None)).with_for_update()
    )
    for row in rows:
        announce(session, row, user)


def _require_login(caller: Caller) -> None:
    # A leaked key must not mint more keys, nor outlive its own revocation through one.
    if caller.api_key_id:
        raise PermissionDenied("API keys are managed with a login token, not with an API key")


class ApiKeyStore:
    """Creates, lists and revokes keys."""

    def __init__(self, db: Database, on_announced: Callable[[], None] = lambda: None) -> None:
        self._db = db
        # Called after a commit that announced a key; the auth service wakes its outbox relay.
        self._on_announced = on_announced

    def create(self, caller: Caller, new: NewApiKey) -> CreatedKey:
        """A new key and its secret (shown once). Users make their own; admins anyone's.

        The caller hands the announcement off and waits for it, so the key works everywhere once created.
        """
        _require_login(caller)
        name = new.name.strip()
        if not name or len(name) > MAX_NAME_LENGTH:
            raise InvalidArgument(f"name is required, at most {MAX_NAME_LENGTH} characters")
        now = utcnow()
        if new.expires_at is not None and new.expires_at <= now:
            raise InvalidArgument("expires_at must be in the future")
        user_id = self._target_user(caller, new.user_id)
        project_id = _optional_uuid(new.project_id, "project_id")
        made = make_key()
        with self._db.transaction() as session:
            user = session.get(User, user_id, with_for_update=True)
            if user is None or not user.active:
                raise NotFound(f"profile {new.user_id or str(user_id)!r} not found")
            role = _key_role(new.role, Role(user.role))
            row = ApiKey(
                id=made.id,
                user_id=user.id,
                name=name,
                role=role.value,
                project_id=project_id,
                secret_hash=made.hash,
                created_at=now,
                expires_at=new.expires_at,
                version=0,
            )
            session.add(row)
            announcement = announce(session, row, user)
            session.flush()
            view = ApiKeyView.of(row, user, now)
        return CreatedKey(view, made.secret, announcement)

    def list_keys(
        self, caller: Caller, page_size: int, page_token: str, user_id: str = "", include_revoked: bool = False
    ) -> ApiKeyPage:
        """A page of keys, newest first: the caller's own, or anyone's for admins."""
        target = self._target_user(caller, user_id) if user_id or not caller.is_admin else None
        query = {"user": str(target or ""), "revoked": include_revoked, "me": str(caller.user_id)}
        page = read_page(page_size, page_token, query)
        statement = select(ApiKey, User).join(User, User.id == ApiKey.user_id)
        if target is not None:
            statement = statement.where(ApiKey.user_id == target)
        if not include_revoked:
            statement = statement.where(ApiKey.revoked_at.is_(None))
        statement = statement.order_by(ApiKey.created_at.desc(), ApiKey.id)
        now = utcnow()
        with self._db.transaction() as session:
            rows = list(session.execute(statement.offset(page.offset).limit(page.size + 1)).tuples())
        views = [ApiKeyView.of(row, user, now) for row, user in rows[: page.size]]
        return ApiKeyPage(views, next_page_token(page, len(views), len(rows) > page.size, query))

    def revoke(self, caller: Caller, key_id: str) -> None:
        """Revoke a key (its user, or an admin). Revoking twice is fine."""
        _require_login(caller)
        with self._db.transaction() as session:
            row = session.get(ApiKey, key_id, with_for_update=True)
            if row is None or (row.user_id != caller.user_id and not caller.is_admin):
                raise NotFound(f"API key {key_id!r} not found")
            if row.revoked_at is not None:
                return
            row.revoked_at = utcnow()
            user = session.get(User, row.user_id)
            assert user is not None  # the foreign key
            announce(session, row, user)
        self._on_announced()

    def record_uses(self, uses: dict[str, float]) -> None:
        """Services accepted these keys at these times (seconds since the epoch)."""
        with self._db.transaction() as session:
            for key_id, at in uses.items():
                moment = datetime.fromtimestamp(at, UTC)
                session.execute(
                    update(ApiKey)
                    .where(ApiKey.id == key_id)
                    .values(last_used_at=func.greatest(func.coalesce(ApiKey.last_used_at, moment), moment))
                )

    def record_use_report(self, payload: bytes) -> None:
        """One report from a service (services/common/api_keys.ApiKeyView.report_uses)."""
        try:
            uses = {str(k): float(v) for k, v in json.loads(payload).items()}
        except (ValueError, AttributeError, TypeError):
            log.warning("unreadable API key use report")
            return
        self.record_uses(uses)

    @staticmethod
    def _target_user(caller: Caller, user_id: str) -> uuid.UUID:
        if not user_id or user_id == "me":
            return caller.user_id
        target = _optional_uuid(user_id, "user_id")
        if target != caller.user_id and not caller.is_admin:
            raise PermissionDenied("only admins manage other users' API keys")
        assert target is not None
        return target


def _key_role(requested: str, user_role: Role) -> Role:
    if not requested:
        return user_role
    try:
        role = Role.parse(requested)
    except ValueError as exc:
        raise InvalidArgument(str(exc)) from None
    if effective_role(role, user_role) is not role:
        raise PermissionDenied(f"a {user_role.value} cannot make a key with the {role.value} role")
    return role


def _optional_uuid(value: str, field: str) -> uuid.UUID | None:
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidArgument(f"{field} is not a valid id") from None
