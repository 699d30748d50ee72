"""Tables of the `auth` schema. No other service reads them."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Identity, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from services.common.db import Base, utcnow
from services.common.outbox import outbox_table

__all__ = ["OUTBOX", "SCHEMA", "ApiKey", "Base", "LoginFailure", "RefreshToken", "Setting", "User"]

SCHEMA = "auth"


class User(Base):
    """A person who logs in ("profile" in the API)."""

    __tablename__ = "users"
    __table_args__ = {"schema": SCHEMA}  # noqa: RUF012

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    username: Mapped[str] = mapped_column(String(150), unique=True)
    email: Mapped[str] = mapped_column(String(254), default="")
    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class RefreshToken(Base):
    """One issued refresh token. A family is every token rotated from one login."""

    __tablename__ = "refresh_tokens"
    __table_args__ = (Index("ix_refresh_tokens_family", "family_id"), {"schema": SCHEMA})

    jti: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    family_id: Mapped[uuid.UUID]
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(f"{SCHEMA}.users.id", ondelete="CASCADE"))
    issued_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    # Set when the token bought a new pair; presenting it again is reuse.
    spent_at: Mapped[datetime | None]
    # Set on logout, deactivation or detected reuse, for the whole family.
    revoked_at: Mapped[datetime | None]


class LoginFailure(Base):
    """A failed login, kept for the throttling window (shared by every auth replica)."""

    __tablename__ = "login_failures"
    __table_args__ = (
        Index("ix_login_failures_username_at", "username", "at"),
        Index("ix_login_failures_address_at", "address", "at"),
        {"schema": SCHEMA},
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    username: Mapped[str] = mapped_column(String(150))
    address: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class Setting(Base):
    """A typed key/value pair: global when user_id is null, personal otherwise."""

    __tablename__ = "settings"
    __table_args__ = (
        # NULLS NOT DISTINCT makes global keys unique too (PostgreSQL 15+).
        UniqueConstraint("key", "user_id", name="uq_settings_key_user", postgresql_nulls_not_distinct=True),
        {"schema": SCHEMA},
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    key: Mapped[str] = mapped_column(String(128))
    value: Mapped[str] = mapped_column(Text)
    value_type: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey(f"{SCHEMA}.users.id", ondelete="CASCADE"))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ApiKey(Base):
    """A long-lived key for programs; only a hash of it is kept (services/common/api_keys.py)."""

    __tablename__ = "api_keys"
    __table_args__ = (Index("ix_api_keys_user_created", "user_id", "created_at"), {"schema": SCHEMA})

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(f"{SCHEMA}.users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    # The role asked for at creation; the key acts with the lower of it and its user's present role.
    role: Mapped[str] = mapped_column(String(16))
    project_id: Mapped[uuid.UUID | None]
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    # Counts the announcements of this key's state, so each is a distinct message for JetStream.
    version: Mapped[int] = mapped_column(Integer, default=0)


# Session revocations and API key states, written with the change that caused them; the OutboxRelay puts
# them into the `token_revocations` and `api_keys` buckets that every service watches.
OUTBOX = outbox_table(Base.metadata, SCHEMA)
