"""Users ("profiles"): who may create, read and change them. There is no signup."""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.auth.api_key_store import announce_user_keys
from services.auth.models import User
from services.auth.passwords import Passwords
from services.auth.tokens import TokenIssuer
from services.common.db import Database, like_pattern, utcnow
from services.common.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from services.common.identity import Caller, Role
from services.common.pagination import Page, next_page_token, read_page

USERNAME = re.compile(r"^[\w.@+-]{3,150}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
ME = "me"


@dataclass(frozen=True)
class ProfileView:
    """A user as the API shows it (never the password hash)."""

    id: uuid.UUID
    username: str
    email: str
    name: str
    role: Role
    active: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, user: User) -> ProfileView:
        """The view of a stored user."""
        return cls(
            id=user.id,
            username=user.username,
            email=user.email,
            name=user.name,
            role=Role(user.role),
            active=user.active,
            created_at=user.created_at,
            updated_at=user.updated_at,
        )


@dataclass(frozen=True)
class NewProfile:
    """What an admin gives to create a user."""

    username: str
    role: str
    password: str
    email: str = ""
    name: str = ""


@dataclass(frozen=True)
class ProfileChanges:
    """Fields to change; None leaves a field as it is."""

    email: str | None = None
    name: str | None = None
    role: str | None = None
    active: bool | None = None


@dataclass(frozen=True)
class ProfilePage:
    """One page of profiles."""

    profiles: list[ProfileView]
    next_page_token: str


def resolve_id(caller: Caller, profile_id: str) -> uuid.UUID:
    """The user id named by `profile_id`, where `me` is the caller."""
    if profile_id == ME:
        return caller.user_id
    try:
        return uuid.UUID(profile_id)
    except ValueError:
        raise NotFound(f"profile {profile_id!r} not found") from None


def _parse_role(value: str) -> Role:
    try:
        return Role.parse(value)
    except ValueError as exc:
        raise InvalidArgument(str(exc)) from None


def _check_email(email: str) -> str:
    email = email.strip()
    if email and not EMAIL.match(email):
        raise InvalidArgument(f"email {email!r} is not a valid address")
    return email


def _check_name(name: str) -> str:
    name = name.strip()
    if len(name) > 200:
        raise InvalidArgument("name must be at most 200 characters")
    return name


class ProfileDirectory:
    """The user directory with its rules: admins manage users; users see and edit themselves."""

    def __init__(self, db: Database, passwords: Passwords, on_revoked: Callable[[], None] = lambda: None) -> None:
        self._db = db
        self._passwords = passwords
        # Called after a commit that ended sessions; the auth service wakes its outbox relay. The admin
        # command leaves it out: the running auth service's relay finds the rows at its next poll.
        self._on_revoked = on_revoked

    def create(self, caller: Caller | None, new: NewProfile) -> ProfileView:
        """Create a user; `caller` None means an operator at the console (the admin command)."""
        if caller is not None and not caller.is_admin:
            raise PermissionDenied("only admins create users")
        if not USERNAME.match(new.username):
            raise InvalidArgument("username must be 3-150 letters, digits or @.+-_")
        role = _parse_role(new.role)
        self._passwords.validate(new.password)
        user = User(
            username=new.username,
            email=_check_email(new.email),
            name=_check_name(new.name),
            role=role.value,
            password_hash=self._passwords.hash(new.password),
            active=True,
        )
        try:
            with self._db.transaction() as session:
                session.add(user)
                session.flush()
                return ProfileView.of(user)
        except IntegrityError:
            raise AlreadyExists(f"username {new.username!r} is taken") from None

    def get(self, caller: Caller, profile_id: str) -> ProfileView:
        """A profile the caller may read: their own, or any for admins."""
        user_id = resolve_id(caller, profile_id)
        self._require_self_or_admin(caller, user_id, profile_id)
        with self._db.transaction() as session:
            return ProfileView.of(self._load(session, user_id, profile_id))

    def list_profiles(
        self, caller: Caller, page_size: int, page_token: str, role: str = "", search: str = ""
    ) -> ProfilePage:
        """Admins list every user (filtered); others see only themselves."""
        query = {"role": role, "search": search, "me": None if caller.is_admin else str(caller.user_id)}
        page = read_page(page_size, page_token, query)
        statement = select(User)
        if not caller.is_admin:
            statement = statement.where(User.id == caller.user_id)
        if role:
            statement = statement.where(User.role == _parse_role(role).value)
        if search:
            pattern = like_pattern(search)
            statement = statement.where(
                or_(
                    User.username.ilike(pattern, escape="\\"),
                    User.name.ilike(pattern, escape="\\"),
                    User.email.ilike(pattern, escape="\\"),
                )
            )
        return self._page(statement.order_by(User.username), page, query)

    def update(self, caller: Caller, profile_id: str, changes: ProfileChanges) -> ProfileView:
        """Admins change anything; a user changes only their own name."""
        user_id = resolve_id(caller, profile_id)
        self._require_self_or_admin(caller, user_id, profile_id)
        admin_only = [name for name in ("email", "role", "active") if getattr(changes, name) is not None]
        if admin_only and not caller.is_admin:
            raise PermissionDenied(f"only admins change {', '.join(admin_only)}")
        if caller.user_id == user_id and (changes.active is False or changes.role not in (None, Role.ADMIN)):
            raise FailedPrecondition("you cannot deactivate yourself or give up your own admin role")
        with self._db.transaction() as session:
            user = self._load(session, user_id, profile_id, lock=True)
            if changes.email is not None:
                user.email = _check_email(changes.email)
            if changes.name is not None:
                user.name = _check_name(changes.name)
            ends_sessions = False
            keys_change = False
            if changes.role is not None:
                role = _parse_role(changes.role).value
                # Access tokens carry the role: a changed role ends the sessions that carry the old one.
                ends_sessions = role != user.role
                keys_change = ends_sessions
                user.role = role
            if changes.active is not None:
                keys_change = keys_change or changes.active != user.active
                user.active = changes.active
                ends_sessions = ends_sessions or not changes.active
            if ends_sessions:
                TokenIssuer.revoke_user(session, user.id, utcnow())
            if keys_change:
                # API keys act with their user's present role, and only while the user is active.
                announce_user_keys(session, user)
            session.flush()
            view = ProfileView.of(user)
        if ends_sessions or keys_change:
            self._on_revoked()
        return view

    def deactivate(self, caller: Caller, profile_id: str) -> None:
        """Deactivate a user and end their sessions (admin only; never oneself)."""
        self.update(caller, profile_id, ProfileChanges(active=False))

    def set_password(self, caller: Caller | None, profile_id: str, old: str, new: str) -> None:
        """Users change their own password with the old one; admins and operators set anyone's."""
        self._passwords.validate(new)
        with self._db.transaction() as session:
            if caller is None:
                user = session.scalar(select(User).where(User.username == profile_id).with_for_update())
                if user is None:
                    raise NotFound(f"user {profile_id!r} not found")
            else:
                user_id = resolve_id(caller, profile_id)
                self._require_self_or_admin(caller, user_id, profile_id)
                user = self._load(session, user_id, profile_id, lock=True)
                if caller.user_id == user.id and not self._passwords.verify(user.password_hash, old):
                    raise PermissionDenied("the old password is wrong")
            user.password_hash = self._passwords.hash(new)
            # A new password ends every session of the user, access tokens included.
            TokenIssuer.revoke_user(session, user.id, utcnow())
        self._on_revoked()

    def set_role(self, username: str, role: str) -> ProfileView:
        """Operators change a user's role by name (the admin command)."""
        with self._db.transaction() as session:
            user = session.scalar(select(User).where(User.username == username).with_for_update())
            if user is None:
                raise NotFound(f"user {username!r} not found")
            new_role = _parse_role(role).value
            changed = new_role != user.role
            if changed:
                TokenIssuer.revoke_user(session, user.id, utcnow())
            user.role = new_role
            if changed:
                announce_user_keys(session, user)
            session.flush()
            return ProfileView.of(user)

    def set_active(self, username: str, active: bool) -> ProfileView:
        """Operators (de)activate a user by name (the admin command)."""
        with self._db.transaction() as session:
            user = session.scalar(select(User).where(User.username == username).with_for_update())
            if user is None:
                raise NotFound(f"user {username!r} not found")
            changed = user.active != active
            user.active = active
            if not active:
                TokenIssuer.revoke_user(session, user.id, utcnow())
            if changed:
                announce_user_keys(session, user)
            session.flush()
            return ProfileView.of(user)

    def ensure_admin(self, username: str, password: str | None) -> str | None:
        """Create the first admin if `username` is missing; returns the password it got (generated if None).

        None when the user already exists: an existing password is never changed.
        """
        if self.exists(username):
            return None
        chosen = password or secrets.token_urlsafe(12)
        self.create(None, NewProfile(username, Role.ADMIN.value, chosen))
        return chosen

    def exists(self, username: str) -> bool:
        """True when a user with this login name exists."""
        with self._db.transaction() as session:
            return session.scalar(select(func.count()).where(User.username == username)) == 1

    @staticmethod
    def _require_self_or_admin(caller: Caller, user_id: uuid.UUID, profile_id: str) -> None:
        if not caller.is_admin and caller.user_id != user_id:
            # NOT_FOUND, not PERMISSION_DENIED: other users' ids are not confirmed to exist.
            raise NotFound(f"profile {profile_id!r} not found")

    @staticmethod
    def _load(session: Session, user_id: uuid.UUID, profile_id: str, lock: bool = False) -> User:
        statement = select(User).where(User.id == user_id)
        if lock:
            statement = statement.with_for_update()
        user = session.scalar(statement)
        if user is None:
            raise NotFound(f"profile {profile_id!r} not found")
        return user

    def _page(self, statement: Select[User], page: Page, query: object) -> ProfilePage:
        with self._db.transaction() as session:
            rows = list(session.scalars(statement.offset(page.offset).limit(page.size + 1)))
        has_more = len(rows) > page.size
        views = [ProfileView.of(u) for u in rows[: page.size]]
        return ProfilePage(views, next_page_token(page, len(views), has_more, query))
