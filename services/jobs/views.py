"""Frozen snapshots of stored rows, the values the domain hands to the edge."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any

from services.jobs.lifecycle import JobState
from services.jobs.models import File, Job, Result


@dataclass(frozen=True)
class JobView:
    """A job as stored."""

    id: uuid.UUID
    project_id: uuid.UUID
    owner_id: uuid.UUID
    name: str
    description: str
    type: str
    status: JobState
    progress: int
    message: str
    params: bytes
    input_file_id: uuid.UUID | None
    input_url: str
    client_request_id: str
    attempt: int
    attempts: int
    error: str
    worker_id: str
    version: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    result_id: uuid.UUID | None

    @classmethod
    def of(cls, job: Job, result_id: uuid.UUID | None = None) -> JobView:
        """The view of a stored job."""
        return cls(
            id=job.id,
            project_id=job.project_id,
            owner_id=job.owner_id,
            name=job.name,
            description=job.description,
            type=job.type,
            status=JobState(job.status),
            progress=job.progress,
            message=job.message,
            params=job.params,
            input_file_id=job.input_file_id,
            input_url=job.input_url,
            client_request_id=job.client_request_id or "",
            attempt=job.attempt,
            attempts=job.attempts,
            error=job.error,
            worker_id=job.worker_id,
            version=job.version,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            updated_at=job.updated_at,
            result_id=result_id,
        )


@dataclass(frozen=True)
class FileView:
    """An uploaded input file."""

    id: uuid.UUID
    owner_id: uuid.UUID
    filename: str
    content_type: str
    size: int
    sha256: str
    blob_key: str
    created_at: datetime

    @classmethod
    def of(cls, row: File) -> FileView:
        """The view of a stored file."""
        return cls(
            row.id,
            row.owner_id,
            row.filename,
            row.content_type,
            row.size,
            row.sha256,
            row.blob_key,
            row.created_at,
        )


@dataclass(frozen=True)
class ResultView:
    """What a completed job left behind."""

    id: uuid.UUID
    job_id: uuid.UUID
    project_id: uuid.UUID
    output_keys: list[str]
    result_url: str
    meta: dict[str, Any]
    logs: list[str]
    created_at: datetime
    finished_at: datetime | None

    @property
    def files(self) -> list[str]:
        """The output files' names; the first is the main result."""
        return [PurePosixPath(k).name for k in self.output_keys]

    @classmethod
    def of(cls, row: Result, project_id: uuid.UUID, logs: list[str]) -> ResultView:
        """The view of a stored result."""
        return cls(
            row.id,
            row.job_id,
            project_id,
            list(row.output_keys),
            row.result_url,
            dict(row.meta),
            logs,
            row.created_at,
            row.finished_at,
        )
