"""Where job inputs and results live: one interface, a local-directory and an S3-compatible backend."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any, Protocol

from services.common.errors import InvalidArgument

CHUNK = 256 * 1024
# Kept from the start of every blob for sniffing its media type (filetype reads up to 8 KiB).
HEAD_BYTES = 8192
# Stored files are users' media: only the owner (the services' one user) may read them. Temporary files
# come 0600 from tempfile already, and an atomic rename keeps the mode; directories are made 0700.
PRIVATE_DIR_MODE = 0o700


class BlobTooLarge(InvalidArgument):
    """The content passed the size limit while it was being written."""


class BlobMissing(Exception):
    """No blob under that key."""


@dataclass(frozen=True)
class BlobInfo:
    """What was stored."""

    key: str
    size: int
    sha256: str
    head: bytes  # the first bytes, for sniffing the media type


def check_key(key: str) -> str:
    """Refuse keys that could leave the store's root (absolute, `..`, empty parts)."""
    parts = PurePosixPath(key).parts
    if not key or key.startswith("/") or "//" in key or any(p in ("", ".", "..") for p in parts) or "\\" in key:
        raise ValueError(f"bad blob key {key!r}")
    return key


class BlobWriter:
    """Receives content chunk by chunk into a temporary file, counting and hashing as it goes."""

    def __init__(self, key: str, limit: int | None, spool_dir: Path | None) -> None:
        self.key = check_key(key)
        self._limit = limit
        self._hash = hashlib.sha256()
        self._size = 0
        self._head = b""
        self._file: IO[bytes] = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed by commit/abort
            dir=spool_dir, prefix=".upload-", delete=False
        )

    @property
    def path(self) -> Path:
        """The temporary file."""
        return Path(self._file.name)

    def write(self, chunk: bytes) -> None:
        """Append a chunk; past the limit, drop everything and raise BlobTooLarge."""
        self._size += len(chunk)
        if self._limit is not None and self._size > self._limit:
            self.abort()
            raise BlobTooLarge(f"the file is larger than the limit of {self._limit} bytes")
        if len(self._head) < HEAD_BYTES:
            self._head += chunk[: HEAD_BYTES - len(self._head)]
        self._hash.update(chunk)
        self._file.write(chunk)

    def finish(self) -> BlobInfo:
        """Close the temporary file and describe the content."""
        self._file.close()
        return BlobInfo(self.key, self._size, self._hash.hexdigest(), self._head)

    def abort(self) -> None:
        """Forget the content."""
        self._file.close()
        self.path.unlink(missing_ok=True)


class BlobStore(Protocol):
    """Stores bytes under keys such as `inputs/<file id>` or `results/<job id>/<attempt>/out.wav`."""

    def writer(self, key: str, limit: int | None = None) -> BlobWriter:
        """A writer whose content becomes the blob on `commit`."""
        ...

    def commit(self, writer: BlobWriter) -> BlobInfo:
        """Store what the writer received; replaces an existing blob."""
        ...

    def put_file(self, key: str, path: Path) -> BlobInfo:
        """Store a local file."""
        ...

    def read(self, key: str) -> Iterator[bytes]:
        """The content in chunks; BlobMissing if absent."""
        ...

    def download(self, key: str, path: Path) -> None:
        """Copy a blob to a local file."""
        ...

    def size(self, key: str) -> int:
        """Size in bytes; BlobMissing if absent."""
        ...

    def delete_prefix(self, prefix: str) -> None:
        """Delete every blob whose key starts with `prefix` + '/' (or equals it)."""
        ...


def _file_info(key: str, path: Path) -> BlobInfo:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        head = stream.read(HEAD_BYTES)
        digest.update(head)
        for chunk in iter(lambda: stream.read(CHUNK), b""):
            digest.update(chunk)
    return BlobInfo(key, path.stat().st_size, digest.hexdigest(), head)


def _make_private_dirs(path: Path) -> None:
    """Create `path` and its missing parents with mode 0700; existing ones are left as they are.

    Path.mkdir(parents=True, mode=...) gives the mode to the last directory only.
    """
    missing: list[Path] = []
    while not path.is_dir():
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        directory.mkdir(mode=PRIVATE_DIR_MODE, exist_ok=True)


class LocalBlobStore:
    """Blobs as files under one directory (a volume in Kubernetes). Writes are atomic renames.

    Files are 0600 and the directories this store creates 0700 (the root too, when it creates it; a
    mounted volume's root keeps the mode its owner gave it).
    """

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._spool = self.root / ".spool"
        _make_private_dirs(self._spool)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def writer(self, key: str, limit: int | None = None) -> BlobWriter:
        return BlobWriter(key, limit, self._spool)

    def commit(self, writer: BlobWriter) -> BlobInfo:
        info = writer.finish()
        target = self._path(writer.key)
        _make_private_dirs(target.parent)
        os.replace(writer.path, target)
        return info

    def put_file(self, key: str, path: Path) -> BlobInfo:
        target = self._path(key)
        _make_private_dirs(target.parent)
        # mkstemp creates the file 0600, and copyfile writes into it without changing the mode.
        descriptor, name = tempfile.mkstemp(dir=self._spool, prefix=".put-")
        os.close(descriptor)
        temporary = Path(name)
        try:
            shutil.copyfile(path, temporary)
            os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)
        return _file_info(key, target)

    def read(self, key: str) -> Iterator[bytes]:
        path = self._path(key)
        if not path.is_file():
            raise BlobMissing(key)
        with path.open("rb") as stream:
            yield from iter(lambda: stream.read(CHUNK), b"")

    def download(self, key: str, path: Path) -> None:
        source = self._path(key)
        if not source.is_file():
            raise BlobMissing(key)
        shutil.copyfile(source, path)

    def size(self, key: str) -> int:
        path = self._path(key)
        if not path.is_file():
            raise BlobMissing(key)
        return path.stat().st_size

    def delete_prefix(self, prefix: str) -> None:
        path = self._path(prefix)
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


class S3BlobStore:
    """Blobs in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW) through boto3."""

    def __init__(self, bucket: str, client: Any, prefix: str = "") -> None:
        self._bucket = bucket
        self._client = client
        self._prefix = prefix.strip("/")

    @classmethod
    def connect(
        cls, bucket: str, endpoint_url: str | None, region: str | None, access_key: str | None, secret_key: str | None
    ) -> S3BlobStore:
        """A store on `bucket` at `endpoint_url` (None: AWS), credentials from arguments or the environment."""
        import boto3  # noqa: PLC0415 - only deployments that use S3 pay for importing it

        client = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
        )
        return cls(bucket, client)

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self._prefix}/{key}" if self._prefix else key

    def writer(self, key: str, limit: int | None = None) -> BlobWriter:
        return BlobWriter(key, limit, None)

    def commit(self, writer: BlobWriter) -> BlobInfo:
        info = writer.finish()
        try:
            self._client.upload_file(str(writer.path), self._bucket, self._key(writer.key))
        finally:
            writer.path.unlink(missing_ok=True)
        return info

    def put_file(self, key: str, path: Path) -> BlobInfo:
        self._client.upload_file(str(path), self._bucket, self._key(key))
        return _file_info(key, path)

    def _missing(self, exc: Exception) -> bool:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
        return code in ("NoSuchKey", "404", "NotFound")

    def read(self, key: str) -> Iterator[bytes]:
        try:
            body = self._client.get_object(Bucket=self._bucket, Key=self._key(key))["Body"]
        except Exception as exc:
            if self._missing(exc):
                raise BlobMissing(key) from exc
            raise
        yield from body.iter_chunks(CHUNK)

    def download(self, key: str, path: Path) -> None:
        with path.open("wb") as out:
            for chunk in self.read(key):
                out.write(chunk)

    def size(self, key: str) -> int:
        try:
            return int(self._client.head_object(Bucket=self._bucket, Key=self._key(key))["ContentLength"])
        except Exception as exc:
            if self._missing(exc):
                raise BlobMissing(key) from exc
            raise

    def delete_prefix(self, prefix: str) -> None:
        full = self._key(prefix)
        paginator = self._client.get_paginator("list_objects_v2")
        for prefix_form in (full, f"{full}/"):
            for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix_form):
                keys = [
                    {"Key": o["Key"]}
                    for o in page.get("Contents", [])
                    if o["Key"] == full or o["Key"].startswith(f"{full}/")
                ]
                if keys:
                    self._client.delete_objects(Bucket=self._bucket, Delete={"Objects": keys})


def open_blob_store(settings: Any) -> BlobStore:
    """The backend named by a BlobStoreSettings."""
    if settings.blob_backend == "s3":
        return S3BlobStore.connect(
            settings.s3_bucket,
            settings.s3_endpoint_url,
            settings.s3_region,
            settings.s3_access_key,
            settings.s3_secret_key,
        )
    return LocalBlobStore(settings.blob_dir)
