"""The one table the benchmark prints: each figure beside the baseline measured in the same run."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    """One measured value, the baseline it is judged against, and the target as a ratio (if any).

    `verdict` is None for figures that carry no target (reported for the record), else PASS or MISS.
    """

    section: str
    name: str
    value: float
    unit: str
    baseline: str = ""
    ratio: float | None = None
    target: str = ""
    passed: bool | None = None

    @property
    def verdict(self) -> str:
        """PASS, MISS, or "" for a figure without a target."""
        if self.passed is None:
            return ""
        return "PASS" if self.passed else "MISS"


def judged(
    section: str,
    name: str,
    value: float,
    unit: str,
    baseline_name: str,
    baseline: float,
    *,
    at_most: float | None = None,
    at_least: float | None = None,
) -> Figure:
    """A figure with the ratio value/baseline checked against `at_most` or `at_least`."""
    ratio = value / baseline if baseline > 0 else math.inf
    if at_most is not None:
        target, passed = f"<= {at_most:g}x", ratio <= at_most
    elif at_least is not None:
        target, passed = f">= {at_least:g}x", ratio >= at_least
    else:
        target, passed = "", None
    return Figure(section, name, value, unit, f"{baseline_name} {_number(baseline)}", ratio, target, passed)


def _number(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 0.1 or value == 0:
        return f"{value:.2f}"
    return f"{value:.2g}"


HEADER = ("section", "figure", "value", "unit", "baseline (same run)", "ratio", "target", "verdict")


def _row(figure: Figure) -> tuple[str, ...]:
    ratio = "" if figure.ratio is None else f"{figure.ratio:.2f}x"
    return (
        figure.section,
        figure.name,
        _number(figure.value),
        figure.unit,
        figure.baseline,
        ratio,
        figure.target,
        figure.verdict,
    )


def render_text(figures: list[Figure]) -> str:
    """An aligned plain-text table."""
    rows = [HEADER, *(_row(f) for f in figures)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def render_markdown(figures: list[Figure]) -> str:
    """The same table in Markdown, for docs/performance.md."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(_row(f)) + " |" for f in figures]
    return "\n".join(lines)
