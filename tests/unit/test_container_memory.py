"""Engine memory ceilings stay under the container's memory limit, read from its cgroup files."""

from __future__ import annotations

from pathlib import Path

from services.workers.container_memory import MIB, WORKER_RESERVE_BYTES, container_memory_limit, fit_ceiling

GIB = 1024 * MIB


def _file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_cgroup_v2_limit_is_read_and_max_means_none(tmp_path: Path) -> None:
    missing = tmp_path / "absent"
    assert container_memory_limit(_file(tmp_path, "a", "4294967296\n"), missing) == 4 * GIB
    assert container_memory_limit(_file(tmp_path, "b", "max\n"), missing) is None


def test_a_cgroup_v1_limit_is_read_when_there_is_no_v2_file_and_its_huge_default_means_none(tmp_path: Path) -> None:
    missing = tmp_path / "absent"
    assert container_memory_limit(missing, _file(tmp_path, "a", "1073741824\n")) == GIB
    assert container_memory_limit(missing, _file(tmp_path, "b", "9223372036854771712\n")) is None
    assert container_memory_limit(missing, tmp_path / "also-absent") is None


def test_a_ceiling_above_the_containers_share_is_lowered_to_it() -> None:
    # A 1 GiB TTS pod with the 3 GiB default: the engine gets what the worker leaves
    assert fit_ceiling(3 * GIB, 1, GIB) == GIB - WORKER_RESERVE_BYTES
    # Two engine processes share what is left
    assert fit_ceiling(3 * GIB, 2, 4 * GIB) == (4 * GIB - WORKER_RESERVE_BYTES) // 2
    # A ceiling that fits, or no container limit, stays as configured
    assert fit_ceiling(512 * MIB, 1, 4 * GIB) == 512 * MIB
    assert fit_ceiling(3 * GIB, 5, None) == 3 * GIB
