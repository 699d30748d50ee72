"""Moving files: job inputs up through FileService's client stream, results down from DownloadResult."""

from __future__ import annotations

import mimetypes
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from aiorch.jobs.v1 import files_pb2, jobs_pb2, results_pb2

from services.cli.client.session import Session

# Below the server's 1 MiB per message, with room for the message framing.
CHUNK_BYTES = 512 * 1024
# `-o -` writes the file to stdout.
STDOUT = Path("-")


def upload_input(session: Session, path: Path) -> files_pb2.File:
    """Upload a local file as a job input; the server sniffs its media type from the content."""
    # The claimed type only lets the server say clearly when content and name disagree.
    claimed = mimetypes.guess_type(path.name)[0] or "application/octet-stream"

    def parts() -> Iterator[files_pb2.UploadFileRequest]:
        yield files_pb2.UploadFileRequest(header=files_pb2.UploadFileHeader(filename=path.name, content_type=claimed))
        with path.open("rb") as source:
            while chunk := source.read(CHUNK_BYTES):
                yield files_pb2.UploadFileRequest(chunk=chunk)

    return session.upload(session.files.UploadFile, parts)


@dataclass(frozen=True)
class Download:
    """A result file written locally."""

    job_id: str
    result_id: str
    file: str
    path: str
    size: int


def download_result(session: Session, job_id: str, file: str, destination: Path | None) -> Download:
    """Write one output of a COMPLETED job (default: its main file) to `destination`.

    Without a destination, or with a directory, the file keeps its own name; `-` writes to stdout.
    A failed transfer leaves no partial file.
    """
    result = session.unary(session.jobs.GetResultForJob, jobs_pb2.GetResultForJobRequest(id=job_id))
    name = file or result.result_file
    chunks = session.stream(session.results.DownloadResult, results_pb2.DownloadResultRequest(id=result.id, file=name))
    if destination == STDOUT:
        size = 0
        for chunk in chunks:
            sys.stdout.buffer.write(chunk.data)
            size += len(chunk.data)
        sys.stdout.buffer.flush()
        return Download(job_id, result.id, name, "-", size)
    # Only the last part of a server-given name: it must never point outside the current directory.
    target = destination or Path(Path(name).name)
    if target.is_dir():
        target = target / Path(name).name
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}-", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            for chunk in chunks:
                out.write(chunk.data)
            size = out.tell()
        # mkstemp made it 0600 (private while partial); the finished file is an ordinary output.
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return Download(job_id, result.id, name, str(target), size)
