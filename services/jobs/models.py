"""Tables of the `jobs` schema. No other service reads them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Identity, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from services.common.db import Base, utcnow
from services.common.outbox import outbox_table

SCHEMA = "jobs"

__all__ = ["OUTBOX", "SCHEMA", "Base", "File", "Job", "JobAttempt", "JobLog", "Result"]


class File(Base):
    """An uploaded input; its bytes live in the blob store under `blob_key`."""

    __tablename__ = "files"
    __table_args__ = {"schema": SCHEMA}  # noqa: RUF012

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    owner_id: Mapped[uuid.UUID] = mapped_column(index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(127))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    blob_key: Mapped[str] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Job(Base):
    """A unit of work. `attempt` counts dispatches (retries add one); `attempts` counts worker starts."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_project_created", "project_id", "created_at"),
        Index("ix_jobs_owner_created", "owner_id", "created_at"),
        # The reaper's scan: running jobs by their worker's deadline.
        Index("ix_jobs_running_deadline", "deadline_at", postgresql_where="status = 'RUNNING'"),
        # One job per (owner, client request id): a repeated create returns the first.
        Index(
            "uq_jobs_owner_request",
            "owner_id",
            "client_request_id",
            unique=True,
            postgresql_where="client_request_id IS NOT NULL",
        ),
        # Keyset pages of job lists (newest first by default): by project and status, and over all jobs.
        Index("ix_jobs_project_status_created", "project_id", "status", "created_at", "id"),
        Index("ix_jobs_created", "created_at", "id"),
        {"schema": SCHEMA},
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    project_id: Mapped[uuid.UUID]
    owner_id: Mapped[uuid.UUID]
    name: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    progress: Mapped[int] = mapped_column(default=0)
    message: Mapped[str] = mapped_column(Text, default="")
    params: Mapped[bytes] = mapped_column(LargeBinary)
    input_file_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey(f"{SCHEMA}.files.id", ondelete="SET NULL"))
    input_url: Mapped[str] = mapped_column(Text, default="")
    client_request_id: Mapped[str | None] = mapped_column(String(200))
    attempt: Mapped[int] = mapped_column(default=1)
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str] = mapped_column(Text, default="")
    worker_id: Mapped[str] = mapped_column(String(200), default="")
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    # Which event of the current attempt was applied last: (delivery, sequence).
    last_delivery: Mapped[int] = mapped_column(default=0)
    last_sequence: Mapped[int] = mapped_column(BigInteger, default=0)
    # The current attempt's dispatch grant: events must carry it (only a worker that received the dispatch can).
    dispatch_grant: Mapped[str] = mapped_column(String(64), default="")
    # Bumped on every stored change; watchers drop broadcasts older than what they sent.
    version: Mapped[int] = mapped_column(BigInteger, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # When the worker of the current delivery stops it (start + the time limit it reported); past this plus a
    # grace, with no outcome, the worker is gone and the reaper fails the job.
    deadline_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class JobAttempt(Base):
    """History: how an earlier attempt of a retried job ended."""

    __tablename__ = "job_attempts"
    __table_args__ = {"schema": SCHEMA}  # noqa: RUF012

    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(f"{SCHEMA}.jobs.id", ondelete="CASCADE"), primary_key=True)
    attempt: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str] = mapped_column(Text, default="")
    worker_id: Mapped[str] = mapped_column(String(200), default="")
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class JobLog(Base):
    """One log line of a job, in arrival order."""

    __tablename__ = "job_logs"
    __table_args__ = (Index("ix_job_logs_job", "job_id", "id"), {"schema": SCHEMA})

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(f"{SCHEMA}.jobs.id", ondelete="CASCADE"))
    attempt: Mapped[int]
    level: Mapped[str] = mapped_column(String(16), default="info")
    line: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class Result(Base):
    """What a completed job left behind; at most one per job."""

    __tablename__ = "results"
    __table_args__ = (UniqueConstraint("job_id", name="uq_results_job"), {"schema": SCHEMA})

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(f"{SCHEMA}.jobs.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(default=1)
    output_keys: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    result_url: Mapped[str] = mapped_column(Text, default="")
    meta: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


OUTBOX = outbox_table(Base.metadata, SCHEMA)
