"""The memory the worker's container may use, read from its cgroup, so engine ceilings stay under it.

An engine ceiling above the container's limit never fires: the kernel kills the whole container first,
every job in it is redelivered, and the one that blew up fails only after its last delivery, without a
reason. So a configured ceiling is lowered to the container's share for each engine process.
"""

from __future__ import annotations

from pathlib import Path

MIB = 1024 * 1024
CGROUP_V2_MAX = Path("/sys/fs/cgroup/memory.max")
CGROUP_V1_LIMIT = Path("/sys/fs/cgroup/memory/memory.limit_in_bytes")
# cgroup v1 writes the largest page-aligned 64-bit number for "no limit".
_V1_UNLIMITED = 1 << 60
# What the worker process itself holds besides its engines (measured here: about 130 MiB idle).
WORKER_RESERVE_BYTES = 256 * MIB


def container_memory_limit(v2: Path = CGROUP_V2_MAX, v1: Path = CGROUP_V1_LIMIT) -> int | None:
    """The container's memory limit in bytes, or None where there is none (or no cgroup to ask)."""
    for path in (v2, v1):
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text == "max" or not text.isdigit():
            return None
        limit = int(text)
        return None if limit >= _V1_UNLIMITED else limit
    return None


def fit_ceiling(ceiling: int, engine_processes: int, container_limit: int | None) -> int:
    """`ceiling` lowered so that `engine_processes` engines at it, and the worker, fit the container."""
    if container_limit is None:
        return ceiling
    share = (container_limit - WORKER_RESERVE_BYTES) // max(1, engine_processes)
    return max(64 * MIB, min(ceiling, share))
