"""Platform settings: typed values, global (admins) or personal (their user), and their rules."""

from __future__ import annotations

import json
import math
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.auth.models import Setting, User
from services.auth.profiles import resolve_id
from services.common.db import Database
from services.common.errors import AlreadyExists, InvalidArgument, NotFound, PermissionDenied
from services.common.identity import Caller, Role
from services.common.pagination import next_page_token, read_page

KEY = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
MAX_VALUE_LENGTH = 64 * 1024


class ValueType(StrEnum):
    """How a setting's text value is to be read."""

    STRING = "string"  # any text
    INTEGER = "integer"  # a whole number, e.g. "42"
    FLOAT = "float"  # a finite decimal number, e.g. "0.5"
    BOOLEAN = "boolean"  # "true" or "false"
    JSON = "json"  # any JSON document


def parse_value_type(value: str) -> ValueType:
    """The value type named `value` ("" means string)."""
    try:
        return ValueType(value or ValueType.STRING)
    except ValueError:
        names = ", ".join(t.value for t in ValueType)
        raise InvalidArgument(f"value_type must be one of {names}, not {value!r}") from None


def check_value(value: str, value_type: ValueType) -> None:
    """Raise InvalidArgument unless `value` parses as `value_type`."""
    if len(value) > MAX_VALUE_LENGTH:
        raise InvalidArgument(f"value must be at most {MAX_VALUE_LENGTH} characters")
    problem = None
    if value_type is ValueType.INTEGER:
        if not re.fullmatch(r"[+-]?\d+", value.strip()):
            problem = "an integer"
    elif value_type is ValueType.FLOAT:
        try:
            if not math.isfinite(float(value)):
                problem = "a finite number"
        except ValueError:
            problem = "a number"
    elif value_type is ValueType.BOOLEAN:
        if value not in ("true", "false"):
            problem = 'boolean "true" or "false"'
    elif value_type is ValueType.JSON:
        try:
            json.loads(value)
        except ValueError:
            problem = "valid JSON"
    if problem:
        raise InvalidArgument(f"value {value[:50]!r} is not {problem}")


@dataclass(frozen=True)
class SettingView:
    """A setting as the API shows it."""

    id: uuid.UUID
    key: str
    value: str
    value_type: ValueType
    user_id: uuid.UUID | None
    description: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: Setting) -> SettingView:
        """The view of a stored setting."""
        return cls(
            id=row.id,
            key=row.key,
            value=row.value,
            value_type=ValueType(row.value_type),
            user_id=row.user_id,
            description=row.description,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


@dataclass(frozen=True)
class NewSetting:
    """A setting to create; user "" makes it global."""

    key: str
    value: str
    value_type: str = ""
    user: str = ""
    description: str = ""


@dataclass(frozen=True)
class SettingChanges:
    """Fields to change; None leaves a field as it is."""

    value: str | None = None
    value_type: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class SettingPage:
    """One page of settings."""

    settings: list[SettingView]
    next_page_token: str


def may_write(caller: Caller, owner: uuid.UUID | None) -> bool:
    """Admins write anything; editors only their personal settings; viewers never write."""
    if caller.is_admin:
        return True
    return caller.role is not Role.VIEWER and owner is not None and owner == caller.user_id


def may_read(caller: Caller, owner: uuid.UUID | None) -> bool:
    """Everyone reads global settings; personal ones are read by their user and admins."""
    return owner is None or caller.is_admin or owner == caller.user_id


class SettingsStore:
    """Creates, reads, changes and deletes settings under the rules above."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def create(self, caller: Caller, new: NewSetting) -> SettingView:
        """Create a setting; its key is unique per user (and among global settings)."""
        if not KEY.match(new.key):
            raise InvalidArgument("key must be 1-128 letters, digits or ._:-")
        value_type = parse_value_type(new.value_type)
        check_value(new.value, value_type)
        owner = resolve_id(caller, new.user) if new.user else None
        if not may_write(caller, owner):
            if owner is None:
                raise PermissionDenied("only admins write global settings")
            if caller.role is Role.VIEWER:
                raise PermissionDenied("viewers do not write settings")
            raise PermissionDenied("you may only create your own settings")
        try:
            with self._db.transaction() as session:
                if owner is not None and session.get(User, owner) is None:
                    raise InvalidArgument(f"user {new.user!r} does not exist")
                row = Setting(
                    key=new.key,
                    value=new.value,
                    value_type=value_type.value,
                    user_id=owner,
                    description=new.description,
                )
                session.add(row)
                session.flush()
                return SettingView.of(row)
        except IntegrityError:
            scope = "globally" if owner is None else "for this user"
            raise AlreadyExists(f"setting {new.key!r} exists {scope}") from None

    def get(self, caller: Caller, setting_id: str) -> SettingView:
        """A setting the caller may read."""
        with self._db.transaction() as session:
            return SettingView.of(self._load(session, caller, setting_id))

    def list_settings(
        self,
        caller: Caller,
        page_size: int,
        page_token: str,
        user: str = "",
        global_only: bool = False,
        key: str = "",
    ) -> SettingPage:
        """Settings the caller may read, filtered by user, global_only and key."""
        query = {"user": user, "global_only": global_only, "key": key, "caller": str(caller.user_id)}
        page = read_page(page_size, page_token, query)
        statement: Select[Setting] = select(Setting)
        if not caller.is_admin:
            statement = statement.where((Setting.user_id.is_(None)) | (Setting.user_id == caller.user_id))
        if global_only:
            statement = statement.where(Setting.user_id.is_(None))
        elif user:
            statement = statement.where(Setting.user_id == resolve_id(caller, user))
        if key:
            statement = statement.where(Setting.key == key)
        statement = statement.order_by(Setting.user_id.is_not(None), Setting.key, Setting.id)
        with self._db.transaction() as session:
            rows = list(session.scalars(statement.offset(page.offset).limit(page.size + 1)))
        views = [SettingView.of(r) for r in rows[: page.size]]
        return SettingPage(views, next_page_token(page, len(views), len(rows) > page.size, query))

    def effective(self, caller: Caller) -> list[SettingView]:
        """One setting per key: the caller's own where they have one, the global one otherwise."""
        with self._db.transaction() as session:
            rows = session.scalars(
                select(Setting).where((Setting.user_id.is_(None)) | (Setting.user_id == caller.user_id))
            )
            chosen: dict[str, Setting] = {}
            for row in rows:
                if row.key not in chosen or row.user_id is not None:
                    chosen[row.key] = row
            return [SettingView.of(chosen[k]) for k in sorted(chosen)]

    def update(self, caller: Caller, setting_id: str, changes: SettingChanges) -> SettingView:
        """Change a setting the caller may write; the value must still parse as its type."""
        with self._db.transaction() as session:
            row = self._load(session, caller, setting_id, lock=True)
            if not may_write(caller, row.user_id):
                raise PermissionDenied("only admins write global settings")
            value_type = (
                parse_value_type(changes.value_type) if changes.value_type is not None else ValueType(row.value_type)
            )
            value = changes.value if changes.value is not None else row.value
            check_value(value, value_type)
            row.value, row.value_type = value, value_type.value
            if changes.description is not None:
                row.description = changes.description
            session.flush()
            return SettingView.of(row)

    def delete(self, caller: Caller, setting_id: str) -> None:
        """Delete a setting the caller may write."""
        with self._db.transaction() as session:
            row = self._load(session, caller, setting_id, lock=True)
            if not may_write(caller, row.user_id):
                raise PermissionDenied("only admins write global settings")
            session.delete(row)

    @staticmethod
    def _load(session: Session, caller: Caller, setting_id: str, lock: bool = False) -> Setting:
        try:
            sid = uuid.UUID(setting_id)
        except ValueError:
            raise NotFound(f"setting {setting_id!r} not found") from None
        statement = select(Setting).where(Setting.id == sid)
        if lock:
            statement = statement.with_for_update()
        row = session.scalar(statement)
        if row is None or not may_read(caller, row.user_id):
            raise NotFound(f"setting {setting_id!r} not found")
        return row
