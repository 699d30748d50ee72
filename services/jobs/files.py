"""Input files: streamed into the blob store under a size limit, sniffed, hashed, owned by the uploader."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlalchemy import select

from services.common.blobs import BlobStore, BlobWriter
from services.common.db import Database, utcnow
from services.common.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from services.common.identity import Caller, Role
from services.jobs import input_media
from services.jobs.book import parse_uuid
from services.jobs.models import File, Job
from services.jobs.views import FileView

_UNSAFE = re.compile(r"[^\w.\- ()\[\]]+")


def safe_filename(name: str) -> str:
    """The last path part of `name`, with odd characters replaced; never empty, at most 255 chars."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    base = _UNSAFE.sub("_", base).lstrip(".")
    return (base or "upload")[:255]


def check_claim(claimed: str, sniffed: str) -> None:
    """Refuse a file whose content is another kind of media than its declared type."""
    claimed_kind, sniffed_kind = input_media.media_kind(claimed), input_media.media_kind(sniffed)
    if claimed_kind is not None and sniffed_kind not in (None, claimed_kind):
        raise InvalidArgument(f"the file claims to be {claimed} but its content is {sniffed}")


@dataclass(frozen=True)
class UploadHeader:
    """What the client says about the file."""

    filename: str
    content_type: str


class FileBook:
    """Uploads and their rules: editors and admins upload; a file is its uploader's (and admins')."""

    def __init__(self, db: Database, blobs: BlobStore, max_bytes: int) -> None:
        self._db = db
        self._blobs = blobs
        self._max = max_bytes

    async def upload(self, caller: Caller, header: UploadHeader, chunks: AsyncIterator[bytes]) -> FileView:
        """Stream chunks to the store; past the limit the upload stops and nothing is kept."""
        if caller.role is Role.VIEWER:
            raise PermissionDenied("viewers do not upload files")
        file_id = uuid.uuid4()
        writer: BlobWriter = await asyncio.to_thread(self._blobs.writer, f"inputs/{file_id}", self._max)
        try:
            async for chunk in chunks:
                if chunk:
                    await asyncio.to_thread(writer.write, chunk)
            info = await asyncio.to_thread(self._blobs.commit, writer)
        except BaseException:
            writer.abort()
            raise
        sniffed = input_media.sniff(info.head)
        try:
            if info.size == 0:
                raise InvalidArgument("the file is empty")
            check_claim(header.content_type, sniffed)
        except InvalidArgument:
            await asyncio.to_thread(self._blobs.delete_prefix, info.key)
            raise
        row = File(
            id=file_id,
            owner_id=caller.user_id,
            filename=safe_filename(header.filename),
            content_type=sniffed,
            size=info.size,
            sha256=info.sha256,
            blob_key=info.key,
            created_at=utcnow(),
        )

        def store() -> FileView:
            with self._db.transaction() as session:
                session.add(row)
                session.flush()
                return FileView.of(row)

        try:
            return await asyncio.to_thread(store)
        except BaseException:
            await asyncio.to_thread(self._blobs.delete_prefix, info.key)
            raise

    def _owned(self, caller: Caller, file_id: str) -> File:
        with self._db.transaction() as session:
            row = session.get(File, parse_uuid(file_id, "file"))
            if row is None or (row.owner_id != caller.user_id and not caller.is_admin):
                raise NotFound(f"file {file_id!r} not found")
            return row

    async def get(self, caller: Caller, file_id: str) -> FileView:
        """A file the caller uploaded (admins: any)."""
        return FileView.of(await asyncio.to_thread(self._owned, caller, file_id))

    async def delete(self, caller: Caller, file_id: str) -> None:
        """Delete a file no active job still needs."""
        row = await asyncio.to_thread(self._owned, caller, file_id)
        if caller.role is Role.VIEWER:
            raise PermissionDenied("viewers do not delete files")

        def run() -> None:
            with self._db.transaction() as session:
                # Any job, finished or not: a retry needs its input again.
                user = session.scalar(select(Job.id).where(Job.input_file_id == row.id))
                if user is not None:
                    raise FailedPrecondition(f"job {user} uses this file; delete the job first")
                session.delete(session.get_one(File, row.id))
            self._blobs.delete_prefix(row.blob_key)

        await asyncio.to_thread(run)
