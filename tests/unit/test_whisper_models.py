"""The models that ship split in wheels (Whisper base, Kokoro) joined once into the cache, checked by hash."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from services.workers.engines.toolkit import kokoro, whisper_models
from services.workers.engines.toolkit.whisper_models import CACHE_ENV, MODELS, ModelUnavailable, SplitModel


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "models"))
    return tmp_path / "models"


def test_base_is_joined_once_into_the_cache_with_its_files_and_hash(cache: Path) -> None:
    source = MODELS["base"]
    assert isinstance(source, SplitModel)

    path = whisper_models.model_dir("base")

    assert path.parent == cache
    assert {p.name for p in path.iterdir()} == {
        "model.bin",
        "config.json",
        "tokenizer.json",
        "vocabulary.txt",
        "SHA256",
    }
    assert (path / "model.bin").stat().st_size == sum(part.stat().st_size for part in source.parts())
    assert (path / "SHA256").read_text().split()[0] == source.sha256
    joined_at = (path / "model.bin").stat().st_mtime_ns
    assert whisper_models.model_dir("base") == path
    assert (path / "model.bin").stat().st_mtime_ns == joined_at, "joined again"
    # Nothing is written beside the installed parts.
    assert all(p.parent.name == "data" and not (p.parent / "model.bin").exists() for p in source.parts())


def test_a_join_whose_hash_differs_is_refused_and_leaves_nothing(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = MODELS["base"]
    assert isinstance(source, SplitModel)
    monkeypatch.setitem(MODELS, "base", replace(source, sha256="0" * 64))

    with pytest.raises(ModelUnavailable, match="has SHA-256 d01c3014"):
        whisper_models.model_dir("base")

    assert [p.name for p in cache.iterdir() if not p.name.endswith(".lock")] == []


def test_an_unfinished_join_is_redone(cache: Path) -> None:
    path = whisper_models.model_dir("base")
    (path / "model.bin").write_bytes(b"cut short")

    assert whisper_models.model_dir("base") == path
    assert (path / "model.bin").stat().st_size > 100_000_000


def test_tiny_en_is_the_wheels_own_directory() -> None:
    path = whisper_models.model_dir("tiny.en")
    assert (path / "model.bin").is_file()
    assert not MODELS["tiny.en"].multilingual and MODELS["base"].multilingual


def test_kokoro_is_joined_once_from_its_four_parts_into_the_cache(cache: Path) -> None:
    path = kokoro.model_path()

    assert path.parent.parent == cache and path.name == kokoro.MODEL_FILE
    assert path.stat().st_size == sum(part.stat().st_size for part in kokoro._parts())
    joined_at = path.stat().st_mtime_ns
    assert kokoro.model_path() == path
    assert path.stat().st_mtime_ns == joined_at, "joined again"


def test_the_catalog_names_every_voice_the_engines_load_and_no_other() -> None:
    from services.common import engine_catalog  # noqa: PLC0415
    from services.workers.engines.toolkit import kokoro, piper, whisper_models  # noqa: PLC0415

    by_engine = {name: v.engine for name, v in engine_catalog.VOICES.items()}
    assert {n for n, e in by_engine.items() if e == engine_catalog.PIPER} == set(piper.VOICES)
    assert {n for n, e in by_engine.items() if e == engine_catalog.KOKORO} == set(kokoro.VOICES)
    assert set(engine_catalog.DEFAULT_VOICES.values()) <= set(engine_catalog.VOICES)
    assert set(engine_catalog.STT_MODELS) == set(whisper_models.MODELS)
