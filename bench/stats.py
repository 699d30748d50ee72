"""Percentiles of latency samples."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by the nearest-rank method; NaN for no samples."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass(frozen=True)
class Latency:
    """p50 and p99 of a set of samples, in milliseconds."""

    p50_ms: float
    p99_ms: float
    count: int

    @classmethod
    def of_seconds(cls, samples: Sequence[float]) -> Latency:
        """Summarise samples given in seconds."""
        return cls(percentile(samples, 50) * 1000, percentile(samples, 99) * 1000, len(samples))
