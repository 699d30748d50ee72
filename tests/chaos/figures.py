"""Figures the chaos tests measure, printed at the end of the pytest run so they can be quoted."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Figures:
    """One test's measurements, in the order they were recorded."""

    test: str
    values: dict[str, object] = field(default_factory=dict)

    def record(self, **values: object) -> None:
        """Add or replace measurements."""
        self.values.update(values)

    def line(self) -> str:
        """`test: key=value, key=value ...`"""
        return f"{self.test}: " + ", ".join(f"{key}={value}" for key, value in self.values.items())


RECORDED: list[Figures] = []


def figures_for(test: str) -> Figures:
    """A fresh record for `test`, listed in the run's summary."""
    figures = Figures(test)
    RECORDED.append(figures)
    return figures
