"""Tables of the `projects` schema. No other service reads them."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from services.common.db import Base, utcnow
from services.common.outbox import outbox_table

__all__ = ["OUTBOX", "SCHEMA", "Base", "Member", "Project"]

SCHEMA = "projects"


class Project(Base):
    """A project: it groups jobs and the people who work on them."""

    __tablename__ = "projects"
    __table_args__ = (
        Index("ix_projects_owner_created", "owner_id", "created_at"),
        Index("ix_projects_created_at", "created_at"),
        {"schema": SCHEMA},
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    # A profile id of the auth service; checked by the token, not by a foreign key.
    owner_id: Mapped[uuid.UUID]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Member(Base):
    """A user given a project role (editor or viewer) on someone else's project."""

    __tablename__ = "members"
    __table_args__ = (
        Index("ix_members_user_id", "user_id"),
        CheckConstraint("role IN ('editor', 'viewer')", name="ck_members_role"),
        {"schema": SCHEMA},
    )

    project_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey(f"{SCHEMA}.projects.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# Messages written with the change that caused them; the OutboxRelay publishes them to JetStream.
OUTBOX = outbox_table(Base.metadata, SCHEMA)
